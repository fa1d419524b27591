"""Inbox notifications of chosen kinds, also sent to the user's phone.

The inbox row is the message (written in the transaction that made the news); `route_new` turns new rows
into one phone delivery each (unique per notification, behind a cursor), and `deliver_due` sends them through
the user's channel, claimed with a conditional UPDATE, retried with backoff, with the delivery's key as the
provider's idempotency key: retried until sent, never sent twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from tuangou.core.auth import Principal
from tuangou.core.db import UnitOfWork, committed_max_id, insert_ignore
from tuangou.core.errors import ValidationFailed
from tuangou.notify import rules
from tuangou.notify.channels import Channel, ChannelError, PhoneMessage
from tuangou.notify.models import Notification, NotifyCursor, PhoneDelivery, PhoneSettings

CURSOR = "phone"
CLAIM = timedelta(seconds=60)  # a message being sent is hidden from other workers this long


def get_settings(uow: UnitOfWork, actor: Principal) -> dict[str, Any]:
    with uow:
        s = uow.session.get(PhoneSettings, actor.user_id)
        if s is None:
            return {"channel": None, "address": None, "kinds": list(rules.DEFAULT_PHONE_KINDS)}
        return {"channel": s.channel, "address": s.address, "kinds": list(s.kinds)}


def set_settings(uow: UnitOfWork, actor: Principal, channel: str, address: str,
                 kinds: list[str] | None) -> dict[str, Any]:
    """A user's phone: channel, address and the kinds sent there (default: the seed's urgent ones)."""
    chosen = list(dict.fromkeys(kinds)) if kinds is not None else list(rules.DEFAULT_PHONE_KINDS)
    problem = rules.phone_problem(channel, address.strip(), chosen)
    if problem:
        raise ValidationFailed(problem)
    with uow:
        values = {"channel": channel, "address": address.strip(), "kinds": chosen, "updated_at": uow.now}
        if not insert_ignore(uow.session, PhoneSettings.__table__, {"user_id": actor.user_id, **values}, ["user_id"]):
            uow.session.execute(update(PhoneSettings).where(PhoneSettings.user_id == actor.user_id).values(**values))
        uow.commit()
    return {"channel": channel, "address": address.strip(), "kinds": chosen}


def my_deliveries(uow: UnitOfWork, actor: Principal, limit: int = 50) -> list[dict[str, Any]]:
    with uow:
        q = select(PhoneDelivery).where(PhoneDelivery.user_id == actor.user_id).order_by(
            PhoneDelivery.id.desc()).limit(limit)
        return [{"id": d.id, "kind": d.kind, "title": d.title, "channel": d.channel, "status": d.status,
                 "attempts": d.attempts, "last_error": d.last_error,
                 "sent_at": d.sent_at.isoformat() if d.sent_at else None} for d in uow.session.scalars(q)]


def route_new(uow: UnitOfWork, batch: int = 1000) -> int:
    """Queue a phone delivery for each new notification whose kind its user sends to the phone."""
    horizon = committed_max_id(uow.db, Notification.__table__)  # never skip a row committed late
    if horizon is None:
        return 0
    with uow:
        insert_ignore(uow.session, NotifyCursor.__table__, {"name": CURSOR, "last_id": 0}, ["name"])
        start = int(uow.session.scalar(select(NotifyCursor.last_id).where(NotifyCursor.name == CURSOR)) or 0)
        rows = uow.session.execute(select(Notification.id, Notification.user_id, Notification.kind,
                                          Notification.title, Notification.body, Notification.created_at)
                                   .where(Notification.id > start, Notification.id <= horizon)
                                   .order_by(Notification.id).limit(batch)).all()
        settled = list(rows)
        if not settled:
            return 0
        users = {r.user_id for r in settled}
        phones = {p.user_id: p for p in uow.session.scalars(select(PhoneSettings).where(
            PhoneSettings.user_id.in_(users)))}
        queued = 0
        for r in settled:
            p = phones.get(r.user_id)
            if p is None or r.kind not in p.kinds:
                continue
            queued += insert_ignore(uow.session, PhoneDelivery.__table__, {
                "notification_id": r.id, "user_id": r.user_id, "channel": p.channel, "address": p.address,
                "kind": r.kind, "title": r.title, "body": r.body, "status": rules.PhoneStatus.PENDING,
                "attempts": 0, "next_attempt_at": uow.now, "last_error": "", "created_at": uow.now},
                ["notification_id"])
        moved = uow.session.execute(update(NotifyCursor).where(NotifyCursor.name == CURSOR,
                                                               NotifyCursor.last_id == start)
                                    .values(last_id=settled[-1].id)).rowcount  # type: ignore[attr-defined]
        if not moved:  # another worker routed this batch
            return 0
        uow.commit()
        return queued


def deliver_due(uow: UnitOfWork, channels: dict[str, Channel], max_attempts: int = 8,
                batch: int = 100) -> dict[str, int]:
    counts = {"sent": 0, "failed": 0, "dead": 0}
    with uow:
        due = list(uow.session.scalars(select(PhoneDelivery.id).where(
            PhoneDelivery.status == rules.PhoneStatus.PENDING, PhoneDelivery.next_attempt_at <= uow.now)
            .order_by(PhoneDelivery.next_attempt_at).limit(batch)))
    for delivery_id in due:
        with uow:
            claimed = uow.session.execute(update(PhoneDelivery).where(
                PhoneDelivery.id == delivery_id, PhoneDelivery.status == rules.PhoneStatus.PENDING,
                PhoneDelivery.next_attempt_at <= uow.now).values(
                next_attempt_at=uow.now + CLAIM, attempts=PhoneDelivery.attempts + 1)).rowcount  # type: ignore[attr-defined]
            if not claimed:
                continue
            d = uow.session.get(PhoneDelivery, delivery_id)
            assert d is not None
            message = PhoneMessage(f"tuangou-phone-{d.id}", d.address, d.kind, d.title, d.body)
            attempts, channel = d.attempts, channels.get(d.channel)
            uow.commit()
        error = ""
        try:
            if channel is None:
                raise ChannelError(f"no {d.channel} channel is configured")
            channel.send(message)
        except ChannelError as exc:
            error = str(exc)[:300]
        with uow:
            if not error:
                values: dict[str, Any] = {"status": rules.PhoneStatus.SENT, "sent_at": uow.now, "last_error": ""}
                counts["sent"] += 1
            elif attempts >= max_attempts:
                values = {"status": rules.PhoneStatus.DEAD, "last_error": error}
                counts["dead"] += 1
            else:
                values = {"next_attempt_at": uow.now + rules.backoff(attempts, base_s=5), "last_error": error}
                counts["failed"] += 1
            uow.session.execute(update(PhoneDelivery).where(PhoneDelivery.id == delivery_id).values(**values))
            uow.commit()
    return counts
