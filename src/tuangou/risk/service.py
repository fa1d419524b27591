"""Risk: holding orders for review, the review queue and its outcomes, the question to the buyer,
merchant links and the policy. One unit of work per command; only the commands commit.

Outcomes feed back: confirmed brushing is a merchant violation (points, so ranking) and a fine, and
the ring's orders on the merchant's deals are cancelled (held) or refunded (paid), which takes them
out of the deal's sales counts; confirmed abuse pauses the buyer's compensation and revokes unused
compensation coupons through the ledger; a false positive lets the held order go on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from tuangou.catalog import service as catalog
from tuangou.core import policy as policies
from tuangou.core.audit import record_audit
from tuangou.core.auth import Principal, Role
from tuangou.core.db import InTransaction, UnitOfWork, insert_ignore, retry_on_deadlock
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.disputes import service as disputes
from tuangou.merchants import rules as merchant_rules
from tuangou.merchants import service as merchants
from tuangou.notify import service as notify
from tuangou.orders import refunds, signals, views
from tuangou.orders import risk_reads as orders
from tuangou.orders import rules as order_rules
from tuangou.risk import graph, rules
from tuangou.risk.models import MerchantLink, RiskCase, RiskQuestion

POLICY = "risk"
QUESTION = "Did you place order #{order_id}? Answer yes or no; your answer is kept as evidence."
LINK_KINDS = ("device", "address", "payment", "staff")


def current_policy(uow: InTransaction) -> rules.RiskPolicy:
    return rules.policy_from_dict(policies.load(uow.session, POLICY))


def get_policy(uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return current_policy(uow).to_dict()


def update_policy(uow: UnitOfWork, actor: Principal, changes: dict[str, Any], reason: str) -> dict[str, Any]:
    return policies.change(uow, actor, POLICY, changes, reason,
                           lambda data, base: rules.policy_from_dict(data, base), current_policy)


def signal_keys(buyer_id: int, sig: order_rules.Signals) -> dict[str, str]:
    """The window counters one order counts against: its account and each signal it has."""
    keys = {"buyer": f"u{buyer_id}"}
    keys.update({column[:-2]: value for column, value in sig.columns().items() if value})
    return keys


# ---- on the order path (rare: only held orders come here) ------------------------------------------

def hold_order(tx: InTransaction, order_id: int, buyer_id: int, merchant_id: int, decision: rules.Decision) -> None:
    """Inside the placing transaction: the order keeps its units but waits for ops; ask the buyer."""
    views.hold_for_review(tx, order_id)
    insert_ignore(tx.session, RiskCase.__table__, {
        "ref": f"order:{order_id}", "kind": rules.CaseKind.ORDER_HOLD.value, "status": rules.CaseStatus.OPEN.value,
        "order_id": order_id, "buyer_id": buyer_id, "merchant_id": merchant_id, "hits": decision.as_json(),
        "outcome": None, "decided_by": None, "decision_note": "", "effects": {}, "opened_at": tx.now,
        "decided_at": None}, ["ref"])
    case_id = tx.session.scalars(select(RiskCase.id).where(RiskCase.ref == f"order:{order_id}")).one()
    insert_ignore(tx.session, RiskQuestion.__table__, {
        "case_id": case_id, "order_id": order_id, "buyer_id": buyer_id,
        "text": QUESTION.format(order_id=order_id), "answer": None, "note": "", "asked_at": tx.now,
        "answered_at": None}, ["case_id"])
    question_id = tx.session.scalars(select(RiskQuestion.id).where(RiskQuestion.case_id == case_id)).one()
    notify.notify_user(tx, buyer_id, "risk_question", f"Order #{order_id} is being checked",
                       QUESTION.format(order_id=order_id), {"order_id": order_id, "question_id": question_id})
    record_event(tx.session, "OrderHeldForReview", {"order_id": order_id, "case_id": case_id,
                                                    "rules": [h.rule for h in decision.hits]}, tx.now,
                 merchant_id=merchant_id)
    record_event(tx.session, "RiskQuestionAsked", {"question_id": question_id, "order_id": order_id,
                                                   "buyer_id": buyer_id}, tx.now)


# ---- the review queue --------------------------------------------------------------------------------

def case_view(c: RiskCase) -> dict[str, Any]:
    return {"id": c.id, "ref": c.ref, "kind": c.kind, "status": c.status, "order_id": c.order_id,
            "buyer_id": c.buyer_id, "merchant_id": c.merchant_id, "hits": c.hits, "outcome": c.outcome,
            "decision_note": c.decision_note, "effects": c.effects, "opened_at": c.opened_at.isoformat(),
            "decided_at": c.decided_at.isoformat() if c.decided_at else None}


def list_cases(uow: UnitOfWork, actor: Principal, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    actor.require(Role.OPS)
    with uow:
        q = select(RiskCase).order_by(RiskCase.id.desc()).limit(limit)
        if status:
            q = q.where(RiskCase.status == status)
        return [case_view(c) for c in uow.session.scalars(q)]


def get_case(uow: UnitOfWork, actor: Principal, case_id: int) -> dict[str, Any]:
    """A case with its evidence graph (accounts, devices, addresses, payment accounts linked to it)."""
    actor.require(Role.OPS)
    with uow:
        c = _case(uow, case_id)
        question = uow.session.scalars(select(RiskQuestion).where(RiskQuestion.case_id == c.id)).first()
        return {**case_view(c), "evidence": graph.evidence(uow, c, current_policy(uow)),
                "question": _question_view(question) if question else None}


def _case(uow: InTransaction, case_id: int) -> RiskCase:
    c = uow.session.get(RiskCase, case_id)
    if c is None:
        raise NotFound(f"risk case {case_id} not found")
    return c


@retry_on_deadlock
def decide_case(uow: UnitOfWork, actor: Principal, case_id: int, outcome: str, note: str = "", *,
                ttl_minutes: int = 15) -> dict[str, Any]:
    """Ops decide a case: confirm it as brushing, abuse or fraud (with the effects that follow), or release
    it as a false positive. Deciding a decided case is refused (`already_decided`), changing nothing."""
    actor.require(Role.OPS)
    try:
        chosen = rules.Outcome(outcome)
    except ValueError as exc:
        raise ValidationFailed(f"outcome must be one of {', '.join(rules.Outcome)}", code="invalid_outcome") from exc
    with uow:
        c = _case(uow, case_id)
        if chosen == rules.Outcome.BRUSHING and c.merchant_id is None:
            raise ValidationFailed("brushing needs a case on a merchant's order", code="invalid_outcome")
        status = rules.CaseStatus.RELEASED if chosen == rules.Outcome.FALSE_POSITIVE else rules.CaseStatus.CONFIRMED
        if not _move(uow, c, status, chosen, actor, note):
            raise Conflict(f"case {case_id} is {c.status}", code="already_decided")
        policy = current_policy(uow)
        if chosen == rules.Outcome.FALSE_POSITIVE:
            effects = _release(uow, c, ttl_minutes)
        elif chosen == rules.Outcome.BRUSHING:
            effects = _confirm_brushing(uow, c, policy, actor)
        elif chosen == rules.Outcome.ABUSE:
            effects = _confirm_abuse(uow, c, policy)
        else:
            effects = {"cancelled_orders": _cancel_held(uow, [c.order_id] if c.order_id else [], "fraud")}
        c.effects = effects
        record_audit(uow.session, actor_id=actor.user_id, actor_role=Role.OPS, action=f"risk_{chosen.value}",
                     target=f"risk_case:{c.id}", reason=note or chosen.value, now=uow.now, details=effects)
        record_event(uow.session, "RiskCaseDecided", {"case_id": c.id, "outcome": chosen.value, **effects}, uow.now,
                     merchant_id=c.merchant_id)
        uow.commit()
        return case_view(c)


def _move(uow: InTransaction, c: RiskCase, status: rules.CaseStatus, outcome: rules.Outcome, actor: Principal,
          note: str) -> bool:
    moved = uow.session.execute(update(RiskCase).where(RiskCase.id == c.id, RiskCase.status == rules.CaseStatus.OPEN)
                                .values(status=status, outcome=outcome, decided_by=actor.user_id,
                                        decision_note=note[:2000], decided_at=uow.now)).rowcount  # type: ignore[attr-defined]
    uow.session.refresh(c)
    return bool(moved)


def _release(uow: InTransaction, c: RiskCase, ttl_minutes: int) -> dict[str, Any]:
    released = bool(c.order_id) and views.release_held(uow, c.order_id or 0, uow.now + timedelta(minutes=ttl_minutes))
    if released and c.buyer_id:
        notify.notify_user(uow, c.buyer_id, "order_released", f"Order #{c.order_id} may be paid",
                           f"The check is done; please pay within {ttl_minutes} minutes.", {"order_id": c.order_id})
    return {"released_order": c.order_id if released else None}


def _cancel_held(uow: InTransaction, order_ids: list[int], why: str) -> list[int]:
    cancelled = []
    for order_id in order_ids:
        buyer_id = orders.cancel_held(uow, order_id)
        if buyer_id is not None:
            cancelled.append(order_id)
            notify.notify_user(uow, buyer_id, "order_cancelled", f"Order #{order_id} was cancelled",
                               f"A review found it was not a genuine order ({why}).", {"order_id": order_id})
    return cancelled


def _confirm_brushing(uow: UnitOfWork, c: RiskCase, policy: rules.RiskPolicy, actor: Principal) -> dict[str, Any]:
    merchant_id = c.merchant_id or 0
    ring = graph.ring(uow, c, policy)
    ring_orders = [o for o in ring.orders if o.merchant_id == merchant_id]
    cancelled = _cancel_held(uow, [o.id for o in ring_orders if o.status == order_rules.OrderStatus.HELD],
                             "brushing")
    refunded = []
    for o in ring_orders:
        if o.status == order_rules.OrderStatus.PAID and refunds.refund_in_uow(
                uow, o.id, None, f"risk case #{c.id}: fake order (brushing)"):
            refunded.append(o.id)
    first = orders.order(uow, c.order_id) if c.order_id else None
    category = catalog.deal_facts(uow, first.deal_id)["category"] if first is not None else "catering"
    violation_id = merchants.record_violation(
        uow, merchant_id=merchant_id, category=category, kind=merchant_rules.ViolationKind.BRUSHING.value,
        ref=f"risk_case:{c.id}", reason=f"brushing confirmed by risk case #{c.id}: "
        + "; ".join(h["words"] for h in c.hits), deal_id=first.deal_id if first else None,
        details={"accounts": sorted(ring.accounts), "fake_orders": len(ring_orders)})
    fine = None
    if policy.brushing_fine_cents and violation_id is not None:
        fine = merchants.add_penalty(uow, merchant_id, merchant_rules.PenaltyKind.FINE, rule="brushing",
                                     evidence=f"risk case #{c.id}", amount_cents=policy.brushing_fine_cents,
                                     violation_id=violation_id, created_by=actor.user_id).id
    for kind, values in ring.values.items():
        for value in values:
            _link(uow, merchant_id, kind, value, "case")
    for account in ring.accounts:
        _link(uow, merchant_id, "staff", f"u{account}", "case")
    others = _close_ring_cases(uow, c, {o.id for o in ring_orders}, actor)
    return {"violation_id": violation_id, "penalty_id": fine, "cancelled_orders": cancelled,
            "refunded_orders": refunded, "accounts": sorted(ring.accounts), "also_confirmed_cases": others}


def _close_ring_cases(uow: InTransaction, c: RiskCase, order_ids: set[int], actor: Principal) -> list[int]:
    """The ring's other open holds are the same finding: confirmed with this one."""
    if not order_ids:
        return []
    ids = list(uow.session.scalars(select(RiskCase.id).where(
        RiskCase.status == rules.CaseStatus.OPEN, RiskCase.order_id.in_(sorted(order_ids)), RiskCase.id != c.id)))
    if ids:
        uow.session.execute(update(RiskCase).where(RiskCase.id.in_(ids), RiskCase.status == rules.CaseStatus.OPEN)
                            .values(status=rules.CaseStatus.CONFIRMED, outcome=c.outcome, decided_by=actor.user_id,
                                    decision_note=f"with case #{c.id}", decided_at=uow.now))
    return ids


def _confirm_abuse(uow: UnitOfWork, c: RiskCase, policy: rules.RiskPolicy) -> dict[str, Any]:
    buyers = graph.ring(uow, c, policy).accounts if c.kind == rules.CaseKind.COUPON_FUNNEL else {c.buyer_id or 0}
    revoked: dict[str, list[int]] = {}
    for buyer_id in sorted(b for b in buyers if b):
        revoked[str(buyer_id)] = disputes.pause_compensation(uow, buyer_id=buyer_id, reason=f"risk case #{c.id}",
                                                              ref=f"risk_case:{c.id}")
        notify.notify_user(uow, buyer_id, "compensation_paused", "Compensation paused",
                           "A review found compensation abuse on your account; upheld disputes still refund "
                           "what you paid.", {"case_id": c.id})
    cancelled = _cancel_held(uow, [c.order_id] if c.order_id else [], "abuse")
    return {"paused_buyers": sorted(int(b) for b in revoked), "revoked_coupons": revoked,
            "cancelled_orders": cancelled}


def rule_stats(uow: UnitOfWork, actor: Principal) -> dict[str, Any]:
    """Each rule's decided cases and false-positive rate."""
    actor.require(Role.OPS)
    with uow:
        decided = [([h["rule"] for h in hits], outcome or "") for hits, outcome in uow.session.execute(
            select(RiskCase.hits, RiskCase.outcome).where(RiskCase.status != rules.CaseStatus.OPEN))]
        open_cases = len(list(uow.session.scalars(select(RiskCase.id).where(
            RiskCase.status == rules.CaseStatus.OPEN))))
    return {"open_cases": open_cases, "rules": rules.false_positive_rates(decided)}


# ---- the buyer's answer --------------------------------------------------------------------------------

def _question_view(q: RiskQuestion) -> dict[str, Any]:
    return {"id": q.id, "case_id": q.case_id, "order_id": q.order_id, "text": q.text, "answer": q.answer,
            "note": q.note, "asked_at": q.asked_at.isoformat(),
            "answered_at": q.answered_at.isoformat() if q.answered_at else None}


def my_questions(uow: UnitOfWork, buyer: Principal) -> list[dict[str, Any]]:
    buyer.require(Role.BUYER)
    with uow:
        return [_question_view(q) for q in uow.session.scalars(
            select(RiskQuestion).where(RiskQuestion.buyer_id == buyer.user_id).order_by(RiskQuestion.id.desc())
            .limit(50))]


def answer_question(uow: UnitOfWork, buyer: Principal, question_id: int, placed: bool, note: str = "") -> dict[str, Any]:
    """The buyer says whether they placed the order; answered once (a second answer changes nothing)."""
    buyer.require(Role.BUYER)
    with uow:
        q = uow.session.get(RiskQuestion, question_id)
        if q is None or q.buyer_id != buyer.user_id:
            raise NotFound(f"question {question_id} not found")
        moved = uow.session.execute(update(RiskQuestion).where(RiskQuestion.id == q.id, RiskQuestion.answer.is_(None))
                                    .values(answer="yes" if placed else "no", note=note[:1000],
                                            answered_at=uow.now)).rowcount  # type: ignore[attr-defined]
        if not moved:
            raise Conflict("this question was answered already", code="already_answered")
        uow.session.refresh(q)
        record_event(uow.session, "RiskQuestionAnswered", {"question_id": q.id, "order_id": q.order_id,
                                                           "answer": q.answer}, uow.now)
        uow.commit()
        return _question_view(q)


# ---- merchant links ------------------------------------------------------------------------------------

def _link(uow: InTransaction, merchant_id: int, kind: str, value_h: str, source: str) -> bool:
    return bool(insert_ignore(uow.session, MerchantLink.__table__, {
        "merchant_id": merchant_id, "kind": kind, "value_h": value_h, "source": source, "added_at": uow.now},
        ["merchant_id", "kind", "value_h"]))


def add_link(uow: UnitOfWork, actor: Principal, key: str, merchant_id: int, kind: str, value: str,
             payment_account: str | None = None) -> dict[str, Any]:
    """A merchant declares (or ops add) a device, address, payment account or buyer account of its own:
    orders through it on the merchant's deals are held as brushing suspects. Stored hashed."""
    if actor.role == Role.MERCHANT:
        actor.require_merchant(merchant_id)
    else:
        actor.require(Role.OPS)
    if kind not in LINK_KINDS or not value.strip():
        raise ValidationFailed(f"kind must be one of {', '.join(LINK_KINDS)} with a value", code="invalid_link")
    if kind == "staff":
        if not value.strip().isdigit():
            raise ValidationFailed("a staff link names the buyer account's id", code="invalid_link")
        hashed: str | None = f"u{int(value)}"
    else:
        given = {"device": {"device": value}, "address": {"address": value},
                 "payment": {"payment_account": payment_account or value}}[kind]
        made = signals.signals(key, **given)
        hashed = made.columns()[f"{kind}_h"]
    if hashed is None:
        raise ValidationFailed("that value says nothing (empty, or a private network address)", code="invalid_link")
    with uow:
        added = _link(uow, merchant_id, kind, hashed, "ops" if actor.role == Role.OPS else "merchant")
        uow.commit()
    return {"merchant_id": merchant_id, "kind": kind, "added": added}


def reputation(uow: UnitOfWork, deal_id: int) -> dict[str, Any]:
    with uow:
        return graph.reputation(uow, deal_id)

