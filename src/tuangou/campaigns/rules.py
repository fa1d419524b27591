"""Pure group-buy (成团) rules: lifecycle, join refusals, cut-offs, cold chain, pool water levels."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class CampaignStatus(StrEnum):
    OPEN = "open"  # announced and joinable, nobody has joined yet
    COLLECTING = "collecting"  # collecting participants and payments until the deadline
    FORMED = "formed"  # paid participants reached the threshold (成团); leader commission booked
    PROCURING = "procuring"  # the supplier is buying / picking the purchase list
    SHIPPING = "shipping"  # goods on their way to the pick-up point
    DELIVERED = "delivered"  # signed for at the pick-up point; buyers collect
    CLOSED = "closed"  # done
    FAILED = "failed"  # the deadline passed below the threshold; refunds are being paid
    REFUNDED = "refunded"  # every participant's money is back
    CANCELLED = "cancelled"  # formed, but could not be delivered: everyone refunded and compensated


class MemberStatus(StrEnum):
    RESERVED = "reserved"  # joined; the order waits for payment
    PAID = "paid"  # paid; counts towards the threshold
    LAPSED = "lapsed"  # the reservation expired or was cancelled; the place went back
    REFUNDED = "refunded"  # the group failed or entry had closed: the refund is booked


JOINABLE = (CampaignStatus.OPEN, CampaignStatus.COLLECTING)
DEAD = (CampaignStatus.FAILED, CampaignStatus.REFUNDED, CampaignStatus.CANCELLED)
# a formed group can still be called off while the goods have not reached the pick-up point
CANCELLABLE = (CampaignStatus.FORMED, CampaignStatus.PROCURING, CampaignStatus.SHIPPING)


class Party(StrEnum):
    SUPPLIER = "supplier"  # the supplier cannot deliver what the purchase list asks
    MERCHANT = "merchant"  # the merchant cannot (or will not) serve the group
# order statuses that end a membership, by the member's status: an unpaid join whose reservation ended,
# or a paid one the buyer refunded themselves (the group keeps no place for money it no longer holds)
ENDED_ORDER: dict[str, tuple[str, ...]] = {MemberStatus.RESERVED: ("expired", "cancelled"),
                                           MemberStatus.PAID: ("refunded",)}


@dataclass(frozen=True)
class Stage:
    """A step an owner moves a formed campaign forward by hand, and how long it may take."""

    source: CampaignStatus
    owners: tuple[str, ...]  # roles allowed to make the move (ops always may)
    sla_key: str


STAGES: dict[CampaignStatus, Stage] = {
    CampaignStatus.PROCURING: Stage(CampaignStatus.FORMED, ("merchant", "supplier"), "procure"),
    CampaignStatus.SHIPPING: Stage(CampaignStatus.PROCURING, ("merchant", "supplier"), "ship"),
    CampaignStatus.DELIVERED: Stage(CampaignStatus.SHIPPING, ("merchant", "leader"), "deliver"),
    CampaignStatus.CLOSED: Stage(CampaignStatus.DELIVERED, ("merchant",), "close"),
}


@dataclass(frozen=True)
class CampaignPolicy:
    """Editable by ops; the defaults come from seed 001 (cold chain locked 48 h ahead)."""

    logistics_prep_hours: int = 12  # cut-off = delivery − this, unless a campaign says otherwise
    cold_chain_lead_hours: int = 48  # cold-chain transport booked at least this long before delivery
    pool_warn_percents: tuple[int, ...] = (30, 10)  # water levels (share of the pool left) that warn the owner
    leader_commission_cents: int = 500  # per formed group, unless a campaign says otherwise
    stage_sla_hours: dict[str, int] = field(default_factory=lambda: {
        "procure": 24, "ship": 24, "deliver": 24, "close": 72})
    # a formed group called off: each participant's no-threshold coupon on top of the full refund, advanced
    # by the platform and recovered from the merchant (the same ¥5 as an over-sold buyer's, SPEC A4)
    cancel_coupon_cents: int = 500
    cancel_coupon_valid_days: int = 30

    def as_dict(self) -> dict[str, Any]:
        return {"logistics_prep_hours": self.logistics_prep_hours,
                "cold_chain_lead_hours": self.cold_chain_lead_hours,
                "pool_warn_percents": list(self.pool_warn_percents),
                "leader_commission_cents": self.leader_commission_cents,
                "stage_sla_hours": dict(self.stage_sla_hours),
                "cancel_coupon_cents": self.cancel_coupon_cents,
                "cancel_coupon_valid_days": self.cancel_coupon_valid_days}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CampaignPolicy:
        base = cls()
        return cls(int(data.get("logistics_prep_hours", base.logistics_prep_hours)),
                   int(data.get("cold_chain_lead_hours", base.cold_chain_lead_hours)),
                   tuple(sorted((int(p) for p in data.get("pool_warn_percents", base.pool_warn_percents)),
                                reverse=True)),
                   int(data.get("leader_commission_cents", base.leader_commission_cents)),
                   {**base.stage_sla_hours, **{k: int(v) for k, v in data.get("stage_sla_hours", {}).items()}},
                   int(data.get("cancel_coupon_cents", base.cancel_coupon_cents)),
                   int(data.get("cancel_coupon_valid_days", base.cancel_coupon_valid_days)))


def policy_problems(p: CampaignPolicy) -> list[str]:
    problems = []
    if not 0 <= p.logistics_prep_hours <= 24 * 14:
        problems.append("logistics_prep_hours must be between 0 and 336")
    if not 0 <= p.cold_chain_lead_hours <= 24 * 14:
        problems.append("cold_chain_lead_hours must be between 0 and 336")
    if any(not 0 < x < 100 for x in p.pool_warn_percents):
        problems.append("pool_warn_percents must be between 1 and 99")
    if p.leader_commission_cents < 0:
        problems.append("leader_commission_cents must be >= 0")
    if any(v <= 0 for v in p.stage_sla_hours.values()):
        problems.append("stage_sla_hours must be positive")
    if not 0 <= p.cancel_coupon_cents <= 10_000_000:
        problems.append("cancel_coupon_cents must be between 0 and 10000000")
    if not 1 <= p.cancel_coupon_valid_days <= 365:
        problems.append("cancel_coupon_valid_days must be between 1 and 365")
    return problems


def order_cutoff(delivery_at: datetime, prep_hours: int) -> datetime:
    """The hard red line for fresh goods: no order after delivery − logistics preparation time."""
    return delivery_at - timedelta(hours=prep_hours)


def cold_chain_book_by(delivery_at: datetime, lead_hours: int) -> datetime:
    return delivery_at - timedelta(hours=lead_hours)


def cold_chain_alert_due(now: datetime, delivery_at: datetime, needs_cold_chain: bool, booked: bool,
                         lead_hours: int) -> bool:
    """An unbooked cold-chain campaign past its booking deadline must raise an alert."""
    return needs_cold_chain and not booked and now >= cold_chain_book_by(delivery_at, lead_hours)


def campaign_terms_problems(threshold: int, max_size: int, now: datetime, deadline: datetime,
                            delivery_at: datetime, cutoff: datetime) -> list[str]:
    problems = []
    if threshold < 1:
        problems.append("threshold must be at least 1")
    if max_size < threshold:
        problems.append("max_size cannot be below threshold")
    if deadline <= now:
        problems.append("deadline must be in the future")
    if delivery_at <= deadline:
        problems.append("delivery_at must be after the deadline")
    if cutoff <= now:
        problems.append("the order cut-off (delivery − logistics preparation) has already passed")
    return problems


def join_window_end(deadline: datetime, cutoff: datetime) -> datetime:
    return min(deadline, cutoff)


def join_refusal(status: str, now: datetime, deadline: datetime, cutoff: datetime, joined: int, max_size: int,
                 close_on_threshold: bool, entry_closed: bool) -> tuple[str, str] | None:
    """Why a join is refused (code, message), or None. The database enforces it again atomically."""
    if now >= cutoff:
        return "past_cutoff", "the order cut-off has passed (delivery − logistics preparation time)"
    if now >= deadline:
        return "campaign_closed", "the campaign's deadline has passed"
    if status not in joinable_statuses(close_on_threshold) or entry_closed:
        return "campaign_closed", f"the campaign is {status}; entry is closed"
    if joined >= max_size:
        return "group_full", f"the group is full ({max_size})"
    return None


def joinable_statuses(close_on_threshold: bool) -> tuple[CampaignStatus, ...]:
    return JOINABLE if close_on_threshold else (*JOINABLE, CampaignStatus.FORMED)


def countdown(now: datetime, deadline: datetime, cutoff: datetime, joined: int, paid: int, threshold: int,
              max_size: int) -> dict[str, Any]:
    end = join_window_end(deadline, cutoff)
    return {"deadline": deadline.isoformat(), "seconds_left": max(0, int((end - now).total_seconds())),
            "participants": paid, "joined": joined, "still_needed": max(0, threshold - paid),
            "spots_left": max(0, max_size - joined)}


def transition_problem(current: str, target: str, role: str) -> tuple[str, str] | None:
    stage = STAGES.get(CampaignStatus(target)) if target in CampaignStatus.__members__.values() else None
    if stage is None:
        return "invalid_stage", f"a campaign cannot be moved to {target!r} by hand"
    if role != "ops" and role not in stage.owners:
        return "forbidden", f"moving to {target} belongs to {' or '.join(stage.owners)}"
    if current != stage.source:
        return "invalid_transition", f"the campaign is {current}; {target} follows {stage.source.value}"
    return None


def shipping_problem(cold_chain: bool, booked: bool) -> tuple[str, str] | None:
    """Cold-chain goods do not leave without booked transport (B3): the shipping stage waits for it."""
    if cold_chain and not booked:
        return "cold_chain_unbooked", "book the cold-chain transport before shipping"
    return None


def cancel_problem(status: str, role: str, reason: str) -> tuple[str, str] | None:
    """Why a formed group cannot be called off now by `role` (code, message), or None."""
    if role not in ("merchant", "supplier", "ops"):
        return "cancel_not_allowed", "the merchant, the supplier or ops call a group off"
    if not reason.strip():
        return "reason_required", "a reason is required"
    if status not in CANCELLABLE:
        return "campaign_not_cancellable", (f"the campaign is {status}; only a formed group not yet delivered "
                                            "can be called off")
    return None


def responsible_party(role: str, named: str | None, has_supplier: bool) -> tuple[Party | None, str]:
    """Who answers for a cancelled group: the supplier or merchant that calls it off, or whom ops name.
    Returns (party, problem): a party, or None and why it cannot be decided."""
    if role in ("merchant", "supplier"):
        if named not in (None, role):
            return None, f"a {role} calls a group off on its own account"
        return Party(role), ""
    if named not in (Party.SUPPLIER, Party.MERCHANT):
        return None, "ops name the responsible party: supplier or merchant"
    if named == Party.SUPPLIER and not has_supplier:
        return None, "this campaign has no supplier"
    return Party(named), ""


def stage_due(entered_at: datetime | None, status: str, policy: CampaignPolicy) -> datetime | None:
    """When the owner of the next stage must have moved the campaign on."""
    nxt = next((s for s in STAGES.values() if s.source == status), None)
    if entered_at is None or nxt is None:
        return None
    return entered_at + timedelta(hours=policy.stage_sla_hours.get(nxt.sla_key, 24))


def purchase_lines(members: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """(product, pick-up point, quantity) per paid participant -> quantities per product and point."""
    totals: dict[tuple[str, str], list[int]] = {}
    for product, point, qty in members:
        acc = totals.setdefault((product, point), [0, 0])
        acc[0] += qty
        acc[1] += 1
    return [{"product": product, "pickup_point": point, "quantity": q, "participants": n}
            for (product, point), (q, n) in sorted(totals.items())]


def pool_level(capacity: int, used: int, safe_stock: int, warn_percents: tuple[int, ...]) -> int:
    """0 = fine; k = the k-th water level crossed (highest first); len+1 = at or below safe stock."""
    left = capacity - used
    if left <= safe_stock:
        return len(warn_percents) + 1
    level = 0
    for i, pct in enumerate(sorted(warn_percents, reverse=True), start=1):
        if capacity > 0 and left * 100 <= capacity * pct:
            level = i
    return level


def progress(steps: list[tuple[str, datetime | None]]) -> list[dict[str, Any]]:
    """The buyer's timeline: each step with its time, or None while it has not happened."""
    return [{"step": name, "at": at.isoformat() if at else None, "done": at is not None} for name, at in steps]


def procurement_rank(cutoff: datetime, deadline: datetime, campaign_id: int) -> tuple[datetime, datetime, int]:
    """Earlier cut-off first: fresh goods with the tightest red line are bought first."""
    return (cutoff, deadline, campaign_id)


def tiers_problems(tiers: list[tuple[int, int]], base_price_cents: int, max_size: int) -> list[str]:
    problems = []
    for size, price in tiers:
        if not 1 <= size <= max_size:
            problems.append(f"price tier size {size} must be between 1 and max_size")
        if not 0 < price <= base_price_cents:
            problems.append(f"price tier price {price} must be positive and at most the deal price")
    return problems


def tier_price(tiers: list[tuple[int, int]], participants: int, base_price_cents: int) -> int:
    """The price the group has reached: the lowest tier whose size the paid participants meet."""
    reached = [price for size, price in tiers if participants >= size]
    return min([base_price_cents, *reached])
