"""In-app inboxes and signed, retried webhooks fed from the outbox."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection, insert, or_, select, update

from tuangou.accounts import service as accounts
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore, table
from tuangou.core.errors import NotFound, ValidationFailed
from tuangou.core.outbox import OutboxEvent
from tuangou.notify import rules
from tuangou.notify.models import Notification, WebhookDelivery, WebhookEndpoint


class _Refused(Exception):
    """The endpoint now resolves to an address webhooks may not reach; the attempt fails without a request."""


CLAIM = timedelta(seconds=60)  # a delivery being sent is hidden from other workers this long


def notify_user(uow: InTransaction, user_id: int, kind: str, title: str, body: str = "",
                data: dict[str, Any] | None = None, severity: str = "info") -> None:
    """Inside an open unit of work: a message in one inbox, committed with the change it reports."""
    uow.session.add(Notification(user_id=user_id, kind=kind, title=title, body=body, data=data or {},
                                 severity=severity, created_at=uow.now))


_INBOX_INSERT = insert(table(Notification))


def inbox_row(user_id: int, kind: str, title: str, body: str, data: dict[str, Any], now: Any,
              severity: str = "info") -> dict[str, Any]:
    """An inbox message as a row, for a Core INSERT on the hot path (no ORM flush)."""
    return {"user_id": user_id, "kind": kind, "title": title, "body": body, "data": data, "severity": severity,
            "created_at": now}


def inbox_insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Inside an open unit of work: write inbox rows made by inbox_row()."""
    conn.execute(_INBOX_INSERT, rows)


# A Core INSERT executed with many rows: RETURNING makes SQLAlchemy send them as multi-row INSERTs
# ("insertmanyvalues", up to 1,000 rows a statement, compiled once), not a statement per row.
_INBOX_MANY = insert(table(Notification)).returning(table(Notification).c.id)


def insert_inbox_rows(uow: InTransaction, rows: list[dict[str, Any]]) -> None:
    """Inside an open unit of work: inbox rows made by inbox_row() as multi-row INSERTs, for jobs that write
    a batch of messages at once."""
    if rows:
        uow.conn.execute(_INBOX_MANY, rows)


def notify_merchant(uow: InTransaction, merchant_id: int, kind: str, title: str, body: str = "",
                    data: dict[str, Any] | None = None, severity: str = "info") -> None:
    for user_id in accounts.merchant_user_ids(uow, merchant_id):
        notify_user(uow, user_id, kind, title, body, data, severity)


@dataclass(frozen=True)
class Message:
    """One inbox message for every active user of a merchant (`notify_merchants`)."""

    merchant_id: int
    kind: str
    title: str
    body: str = ""
    data: dict[str, Any] | None = None
    severity: str = "info"


def notify_merchants(uow: InTransaction, messages: list[Message]) -> None:
    """Inside an open unit of work: `notify_merchant` for many messages, users read once, rows inserted at once."""
    users = accounts.merchant_user_ids_many(uow, [m.merchant_id for m in messages])
    insert_inbox_rows(uow, [inbox_row(u, m.kind, m.title, m.body, m.data or {}, uow.now, m.severity)
                            for m in messages for u in users[m.merchant_id]])


def notify_ops(uow: InTransaction, kind: str, title: str, body: str = "", data: dict[str, Any] | None = None,
               severity: str = "info") -> None:
    for user_id in accounts.user_ids_with_role(uow, Role.OPS):
        notify_user(uow, user_id, kind, title, body, data, severity)


@dataclass(frozen=True)
class InboxItem:
    id: int
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    severity: str
    created_at: str
    read: bool


def inbox(uow: UnitOfWork, user_id: int, *, unread_only: bool = False, kind: str | None = None,
          cursor: int | None = None, limit: int = 50) -> list[InboxItem]:
    with uow:
        q = select(Notification).where(Notification.user_id == user_id).order_by(Notification.id.desc()).limit(limit)
        if unread_only:
            q = q.where(Notification.read_at.is_(None))
        if kind:
            q = q.where(Notification.kind == kind)
        if cursor:
            q = q.where(Notification.id < cursor)
        return [InboxItem(n.id, n.kind, n.title, n.body, n.data, n.severity, n.created_at.isoformat(),
                          n.read_at is not None) for n in uow.session.scalars(q)]


def mark_read(uow: UnitOfWork, user_id: int, ids: list[int] | None) -> int:
    """Mark some (or, with None, all) of a user's messages read; returns how many changed."""
    with uow:
        q = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        if ids is not None:
            q = q.where(Notification.id.in_(ids))
        changed = int(uow.session.execute(q.values(read_at=uow.now)).rowcount)  # type: ignore[attr-defined]
        uow.commit()
        return changed


def resolve_host(url: str) -> list[str]:
    """Every address `url`'s host resolves to now; [] when it does not resolve (nothing can be reached)."""
    try:
        host = urlsplit(url).hostname
        if not host:
            return []
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
    except (OSError, ValueError, UnicodeError):
        return []


Resolver = Callable[[str], list[str]]


def add_endpoint(uow: UnitOfWork, actor: Principal, url: str, event_types: list[str],
                 allow: tuple[str, ...] = (), resolve: Resolver = resolve_host) -> dict[str, Any]:
    """Merchants get their own events; ops get every event. No URL into the platform's own network."""
    refusal = rules.url_refusal(url, resolve(url), allow)
    if refusal:
        raise ValidationFailed(refusal, code="webhook_url_refused")
    with uow:
        endpoint = WebhookEndpoint(owner_id=actor.user_id,
                                   merchant_id=actor.merchant_id if actor.role == Role.MERCHANT else None,
                                   url=url, secret=secrets.token_hex(24), event_types=event_types or ["*"],
                                   created_at=uow.now)
        if actor.role not in (Role.MERCHANT, Role.OPS):
            raise ValidationFailed("only merchants and ops subscribe to webhooks", code="forbidden", status=403)
        uow.session.add(endpoint)
        uow.session.flush()
        uow.commit()
        return {"id": endpoint.id, "url": url, "event_types": endpoint.event_types, "secret": endpoint.secret}


def list_endpoints(uow: UnitOfWork, actor: Principal) -> list[dict[str, Any]]:
    with uow:
        q = select(WebhookEndpoint).where(WebhookEndpoint.owner_id == actor.user_id)
        return [{"id": e.id, "url": e.url, "event_types": e.event_types, "active": e.active}
                for e in uow.session.scalars(q)]


def list_deliveries(uow: UnitOfWork, actor: Principal, endpoint_id: int) -> list[dict[str, Any]]:
    with uow:
        endpoint = uow.session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or (endpoint.owner_id != actor.user_id and actor.role != Role.OPS):
            raise NotFound("no such webhook endpoint")
        q = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id).order_by(
            WebhookDelivery.id.desc()).limit(200)
        return [{"id": d.id, "event_id": d.event_id, "status": d.status, "attempts": d.attempts,
                 "last_error": d.last_error, "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None}
                for d in uow.session.scalars(q)]


def relay_outbox(uow: UnitOfWork, batch: int = 500) -> int:
    """Turn new outbox events into one pending delivery per interested endpoint.

    Safe to run twice or concurrently: a delivery is unique per (endpoint, event).
    """
    with uow:
        events = list(uow.session.scalars(select(OutboxEvent).where(OutboxEvent.relayed_at.is_(None))
                                           .order_by(OutboxEvent.id).limit(batch)))
        if not events:
            return 0
        endpoints = list(uow.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active)))
        for event in events:
            for ep in endpoints:
                if ep.merchant_id is not None and ep.merchant_id != event.merchant_id:
                    continue
                if rules.wants(ep.event_types, event.type):
                    insert_ignore(uow.session, WebhookDelivery.__table__, {
                        "endpoint_id": ep.id, "event_id": event.event_id, "status": rules.DeliveryStatus.PENDING,
                        "attempts": 0, "next_attempt_at": uow.now, "last_error": ""}, ["endpoint_id", "event_id"])
            event.relayed_at = uow.now
        uow.commit()
        return len(events)


def deliver_due(uow: UnitOfWork, http: httpx.Client, max_attempts: int, batch: int = 100,
                allow: tuple[str, ...] = (), resolve: Resolver = resolve_host) -> dict[str, int]:
    """Send due deliveries: claim each with a conditional UPDATE, post it, record the outcome.

    At least once: a worker killed after the receiver answered but before the
    outcome commits sends again after the claim lapses; the event id lets the
    receiver drop the duplicate.
    """
    counts = {"delivered": 0, "failed": 0, "dead": 0}
    with uow:
        due = list(uow.session.execute(
            select(WebhookDelivery.id).where(WebhookDelivery.status == rules.DeliveryStatus.PENDING,
                                             WebhookDelivery.next_attempt_at <= uow.now)
            .order_by(WebhookDelivery.next_attempt_at).limit(batch)).scalars())
    for delivery_id in due:
        with uow:
            claimed = uow.session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                              WebhookDelivery.status == rules.DeliveryStatus.PENDING,
                                              WebhookDelivery.next_attempt_at <= uow.now)
                .values(next_attempt_at=uow.now + CLAIM, attempts=WebhookDelivery.attempts + 1)).rowcount  # type: ignore[attr-defined]
            if not claimed:
                continue
            d = uow.session.get(WebhookDelivery, delivery_id)
            assert d is not None
            endpoint = uow.session.get(WebhookEndpoint, d.endpoint_id)
            event = uow.session.scalar(select(OutboxEvent).where(OutboxEvent.event_id == d.event_id))
            assert endpoint is not None and event is not None
            attempts, url, secret = d.attempts, endpoint.url, endpoint.secret
            body = json.dumps({"id": event.event_id, "type": event.type, "occurred_at": event.occurred_at.isoformat(),
                               "data": event.payload}, separators=(",", ":")).encode()
            uow.commit()
        # checked again now: the name may resolve elsewhere than at registration (DNS rebinding)
        error = rules.url_refusal(url, resolve(url), allow) or ""
        try:
            if error:
                raise _Refused(error)
            ts = int(uow.clock.now().timestamp())
            response = http.post(url, content=body, headers={
                "content-type": "application/json", "x-tuangou-event-id": event.event_id,
                "x-tuangou-event-type": event.type, "x-tuangou-signature": rules.signature(secret, ts, body)})
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except _Refused:
            pass
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        with uow:
            d = uow.session.get(WebhookDelivery, delivery_id)
            assert d is not None
            if not error:
                d.status, d.delivered_at, d.last_error = rules.DeliveryStatus.DELIVERED, uow.now, ""
                counts["delivered"] += 1
            elif attempts >= max_attempts:
                d.status, d.last_error = rules.DeliveryStatus.DEAD, error
                counts["dead"] += 1
            else:
                d.next_attempt_at, d.last_error = uow.now + rules.backoff(attempts), error
                counts["failed"] += 1
            uow.commit()
    return counts


def replay_dead(uow: UnitOfWork, actor: Principal, endpoint_id: int) -> int:
    """Ops put dead deliveries of an endpoint back in the queue."""
    actor.require(Role.OPS)
    with uow:
        n = int(uow.session.execute(update(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id,
            or_(WebhookDelivery.status == rules.DeliveryStatus.DEAD)).values(
            status=rules.DeliveryStatus.PENDING, next_attempt_at=uow.now, attempts=0)).rowcount)  # type: ignore[attr-defined]
        uow.commit()
        return n
