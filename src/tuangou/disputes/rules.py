"""Pure dispute rules: kinds, tiers, the state machine, remedies, coupons, stacking and triage.

Every number is a field of `DisputePolicy` whose defaults come from the seed (000): ops edit the
stored copy through the API, nothing here reads a clock or a database.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol


class DisputeKind(StrEnum):
    LATE = "late_fulfilment"  # served, but late
    NOT_TODAY = "cannot_fulfil_today"  # e.g. restaurant full: not possible today, possible soon
    CANNOT_FULFIL = "cannot_fulfil"  # cannot be honoured at all (room full at arrival, show oversold)
    QUALITY = "quality_problem"  # delivered, but bad
    NOT_AS_DESCRIBED = "not_as_described"  # delivered, but not what was sold


class Tier(StrEnum):
    LIGHT = "light"  # late up to the light limit: the order is free + a small coupon
    MEDIUM = "medium"  # not today: rebook within days + a free side item
    SEVERE = "severe"  # cannot be honoured: full refund + a larger coupon


class DisputeStatus(StrEnum):
    OPEN = "open"  # filed; the merchant or ops must respond before respond_by
    CONTESTED = "contested"  # the merchant disagrees with evidence; ops decide
    ESCALATED = "escalated"  # nobody responded in time; ops were alerted
    CONFIRMED = "confirmed"  # upheld: the remedy was issued by the platform at once
    REJECTED = "rejected"  # not upheld by ops
    WITHDRAWN = "withdrawn"  # the buyer took it back


class DisputeAction(StrEnum):
    CONTEST = "contest"  # the merchant disagrees
    ESCALATE = "escalate"  # the SLA timer ran out
    CONFIRM = "confirm"  # ops (or the merchant admitting, or an over-sale incident) uphold it
    REJECT = "reject"  # ops turn it down
    WITHDRAW = "withdraw"  # the buyer takes it back


_UNDECIDED = {DisputeStatus.OPEN, DisputeStatus.CONTESTED, DisputeStatus.ESCALATED}
TRANSITIONS: dict[DisputeAction, tuple[set[DisputeStatus], DisputeStatus]] = {
    DisputeAction.CONTEST: ({DisputeStatus.OPEN, DisputeStatus.ESCALATED}, DisputeStatus.CONTESTED),
    DisputeAction.ESCALATE: ({DisputeStatus.OPEN, DisputeStatus.CONTESTED}, DisputeStatus.ESCALATED),
    DisputeAction.CONFIRM: (_UNDECIDED, DisputeStatus.CONFIRMED),
    DisputeAction.REJECT: (_UNDECIDED, DisputeStatus.REJECTED),
    DisputeAction.WITHDRAW: (_UNDECIDED, DisputeStatus.WITHDRAWN),
}


def next_status(current: str, action: DisputeAction) -> DisputeStatus | None:
    """The status after `action`, or None when the action is not allowed from `current`."""
    sources, target = TRANSITIONS[action]
    return target if current in sources else None


def sources_of(action: DisputeAction) -> list[str]:
    return sorted(s.value for s in TRANSITIONS[action][0])


class CouponKind(StrEnum):
    AMOUNT = "amount"  # a fixed number of cents off
    PERCENT = "percent"  # basis points off the order amount
    ITEM = "item"  # compensation in kind: a free item (side dish, trial class) the merchant serves; redeemed by code


class CouponOrigin(StrEnum):
    COMPENSATION = "compensation"  # given to make a buyer whole (disputes, over-sales)
    PROMOTION = "promotion"  # marketing


class CouponStatus(StrEnum):
    AVAILABLE = "available"  # may be applied at checkout
    USED = "used"  # applied to an order
    REVOKED = "revoked"  # replaced (e.g. by a stacked package) before it was used
    EXPIRED = "expired"  # an item voucher whose date passed unused: nothing was served, nothing is owed


class RecoveryStatus(StrEnum):
    OPEN = "open"  # booked against the merchant's account; not yet covered by its settlements
    RECOVERED = "recovered"  # the merchant's settlements brought its account back to zero or above, or it
    # served the item voucher the claim stood for (recovered in kind)
    CANCELLED = "cancelled"  # reversed (the coupon it paid for was given back unused)


class StackStatus(StrEnum):
    PENDING = "pending"  # the buyer applied; ops decide
    APPROVED = "approved"  # the package was issued
    REJECTED = "rejected"  # ops said no


@dataclass(frozen=True)
class TierRemedy:
    refund: bool  # the order is refunded in full (issued vouchers) or made free (redeemed ones)
    coupon_cents: int  # compensation coupon, no threshold
    rebook_days: int = 0  # the merchant must serve the buyer within this many days
    # compensation in kind: an item voucher for `side_item` (a free side dish, a trial class) at the same
    # merchant, which serves it; `side_item_cents` is its cost, booked against that merchant. Empty or 0: none.
    side_item: str = ""
    side_item_cents: int = 0


def _default_tiers() -> dict[str, TierRemedy]:
    return {Tier.LIGHT: TierRemedy(refund=True, coupon_cents=1000),
            Tier.MEDIUM: TierRemedy(refund=False, coupon_cents=0, rebook_days=3, side_item="free side dish",
                                    side_item_cents=1500),
            Tier.SEVERE: TierRemedy(refund=True, coupon_cents=3000)}


def _default_kind_tiers() -> dict[str, str]:
    return {DisputeKind.NOT_TODAY: Tier.MEDIUM, DisputeKind.CANNOT_FULFIL: Tier.SEVERE,
            DisputeKind.QUALITY: Tier.LIGHT, DisputeKind.NOT_AS_DESCRIBED: Tier.MEDIUM}


@dataclass(frozen=True)
class DisputePolicy:
    """Seed 000 defaults; stored in the database and edited by ops."""

    light_late_minutes: int = 30  # late up to this is light; later is treated as medium
    tiers: dict[str, TierRemedy] = field(default_factory=_default_tiers)
    kind_tiers: dict[str, str] = field(default_factory=_default_kind_tiers)
    respond_within_minutes: int = 120  # SLA: the merchant or ops must respond within this
    coupon_valid_days: int = 30
    stack_coupon_cents: int = 5000  # severe disputes: refund + ¥50 coupon + 20% off the next order
    stack_percent_bps: int = 2000
    stack_percent_cap_cents: int = 10000  # the 20% coupon takes at most this much off
    stacking_tiers: tuple[str, ...] = (Tier.SEVERE,)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stacking_tiers"] = list(self.stacking_tiers)
        return data


def policy_from_dict(data: dict[str, Any], base: DisputePolicy | None = None) -> DisputePolicy:
    """Merge `data` over `base` (defaults when None); raises ValueError on nonsense."""
    base = base or DisputePolicy()
    known = {f.name for f in fields(DisputePolicy)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown policy fields: {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    for name, value in data.items():
        if name == "tiers":
            tiers = dict(base.tiers)
            for tier, remedy in dict(value).items():
                if tier not in Tier.__members__.values():
                    raise ValueError(f"unknown tier {tier}")
                tiers[tier] = replace(tiers[tier], **{k: _remedy_field(k, v) for k, v in dict(remedy).items()})
            changes[name] = tiers
        elif name == "kind_tiers":
            kinds = dict(base.kind_tiers)
            for kind, tier in dict(value).items():
                if kind not in DisputeKind.__members__.values() or tier not in Tier.__members__.values():
                    raise ValueError(f"bad kind tier {kind} -> {tier}")
                kinds[kind] = tier
            changes[name] = kinds
        elif name == "stacking_tiers":
            changes[name] = tuple(Tier(t).value for t in value)
        else:
            changes[name] = _remedy_field(name, value)
    policy = replace(base, **changes)
    problem = policy_problem(policy)
    if problem:
        raise ValueError(problem)
    return policy


def _remedy_field(name: str, value: Any) -> Any:
    if name == "refund":
        if not isinstance(value, bool):
            raise ValueError("refund must be true or false")
        return value
    if name == "side_item":
        if not isinstance(value, str) or len(value.strip()) > MAX_ITEM_NAME:
            raise ValueError(f"side_item must be a name of at most {MAX_ITEM_NAME} characters")
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    return value


MAX_CENTS = 10_000_000  # ¥100,000: no remedy is larger; keeps every amount inside a database integer
MAX_MINUTES = 60 * 24 * 30
MAX_ITEM_NAME = 100


def policy_problem(p: DisputePolicy) -> str | None:
    numbers = {"light_late_minutes": p.light_late_minutes, "respond_within_minutes": p.respond_within_minutes,
               "coupon_valid_days": p.coupon_valid_days, "stack_coupon_cents": p.stack_coupon_cents,
               "stack_percent_cap_cents": p.stack_percent_cap_cents}
    for name, value in numbers.items():
        if value < 0:
            return f"{name} must not be negative"
        if value > (MAX_MINUTES if name.endswith("minutes") or name.endswith("days") else MAX_CENTS):
            return f"{name} is too large"
    if p.respond_within_minutes == 0 or p.coupon_valid_days == 0:
        return "respond_within_minutes and coupon_valid_days must be positive"
    if not 0 <= p.stack_percent_bps <= 10000:
        return "stack_percent_bps must be between 0 and 10000"
    for tier, r in p.tiers.items():
        if min(r.coupon_cents, r.rebook_days, r.side_item_cents) < 0:
            return f"tier {tier}: amounts must not be negative"
        if max(r.coupon_cents, r.side_item_cents) > MAX_CENTS or r.rebook_days > 365:
            return f"tier {tier}: amounts are too large"
    return None


def classify(kind: str, late_minutes: int | None, policy: DisputePolicy) -> Tier:
    """The tier a dispute of `kind` falls in by policy."""
    if kind == DisputeKind.LATE:
        if late_minutes is not None and late_minutes > policy.light_late_minutes:
            return Tier.MEDIUM
        return Tier.LIGHT
    return Tier(policy.kind_tiers.get(kind, Tier.MEDIUM))


def remedy_for(tier: str, policy: DisputePolicy) -> TierRemedy:
    return policy.tiers[Tier(tier)]


def gives_item(remedy: TierRemedy) -> bool:
    """A tier compensates in kind when it names an item and gives it a cost."""
    return bool(remedy.side_item) and remedy.side_item_cents > 0


def respond_by(opened_at: datetime, policy: DisputePolicy) -> datetime:
    return opened_at + timedelta(minutes=policy.respond_within_minutes)


# ---- coupons ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CouponTerms:
    kind: str
    value: int  # cents for AMOUNT, basis points for PERCENT
    threshold_cents: int
    cap_cents: int | None  # PERCENT: most it takes off
    valid_until: datetime
    merchant_id: int | None  # only at this merchant, when set


def coupon_problem(terms: CouponTerms, *, order_cents: int, merchant_id: int, now: datetime) -> str | None:
    """Why this coupon cannot be applied to this order, or None."""
    if terms.kind == CouponKind.ITEM:
        return "an item voucher is shown at the merchant, which serves the item; it takes nothing off an order"
    if now >= terms.valid_until:
        return "coupon expired"
    if terms.merchant_id is not None and terms.merchant_id != merchant_id:
        return "coupon is only valid at another merchant"
    if order_cents < terms.threshold_cents:
        return f"order must reach {terms.threshold_cents} cents for this coupon"
    return None


def coupon_discount(terms: CouponTerms, order_cents: int) -> int:
    """Cents off: never more than the order amount, never negative."""
    if terms.kind == CouponKind.PERCENT:
        off = (order_cents * terms.value + 5000) // 10000
        if terms.cap_cents is not None:
            off = min(off, terms.cap_cents)
    else:
        off = terms.value
    return max(0, min(off, order_cents))


class ItemVoucherRefusal(StrEnum):
    """Why a merchant cannot redeem an item voucher (the stable problem codes)."""

    WRONG_MERCHANT = "item_voucher_wrong_merchant"  # it is served by another merchant
    USED = "item_voucher_used"  # already served
    EXPIRED = "item_voucher_expired"  # its date passed
    WITHDRAWN = "item_voucher_withdrawn"  # revoked (e.g. compensation paused for abuse)


def item_voucher_refusal(*, status: str, voucher_merchant_id: int | None, merchant_id: int, valid_until: datetime,
                         now: datetime) -> ItemVoucherRefusal | None:
    """Why `merchant_id` cannot serve this item voucher now, or None: the merchant first, then its state."""
    if voucher_merchant_id != merchant_id:
        return ItemVoucherRefusal.WRONG_MERCHANT
    if status == CouponStatus.USED:
        return ItemVoucherRefusal.USED
    if status == CouponStatus.EXPIRED or (status == CouponStatus.AVAILABLE and now >= valid_until):
        return ItemVoucherRefusal.EXPIRED
    if status != CouponStatus.AVAILABLE:
        return ItemVoucherRefusal.WITHDRAWN
    return None


# ---- stacking -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PackageCoupon:
    kind: str
    value: int
    cap_cents: int | None = None


def stacking_problem(tier: str, status: str, policy: DisputePolicy) -> str | None:
    """Compensation does not stack, except where the policy lets a tier ask for a package."""
    if status != DisputeStatus.CONFIRMED:
        return "only a confirmed dispute can ask for a stacked package"
    if tier not in policy.stacking_tiers:
        return f"compensation does not stack for {tier} disputes"
    return None


def stacked_package(policy: DisputePolicy, default_coupon_cents: int, default_coupon_used: bool
                    ) -> list[PackageCoupon]:
    """The coupons an approved package adds. The default coupon is replaced: revoked when still
    unused (then the full package is issued), topped up when already used."""
    amount = policy.stack_coupon_cents - (default_coupon_cents if default_coupon_used else 0)
    package = []
    if amount > 0:
        package.append(PackageCoupon(CouponKind.AMOUNT, amount))
    if policy.stack_percent_bps > 0:
        package.append(PackageCoupon(CouponKind.PERCENT, policy.stack_percent_bps, policy.stack_percent_cap_cents))
    return package


# ---- after-sales triage -------------------------------------------------------------------------

class TicketStatus(StrEnum):
    PROPOSED = "proposed"  # triage proposed remedies; the buyer picks one
    CHOSEN = "chosen"  # the buyer picked; the merchant or ops confirm
    RESOLVED = "resolved"  # confirmed; money and stock followed
    REJECTED = "rejected"  # the merchant or ops turned it down


class Remedy(StrEnum):
    RETURN = "return"  # goods back, money back
    RESHIP = "reship"  # another unit is sent
    DISCOUNT = "discount"  # keep it, part of the money back


@dataclass(frozen=True)
class Photo:
    name: str
    taken_at: datetime | None = None
    size_bytes: int = 0


@dataclass(frozen=True)
class TicketFacts:
    description: str
    order_amount_cents: int
    quantity: int
    paid_at: datetime | None
    now: datetime
    photos: tuple[Photo, ...] = ()


@dataclass(frozen=True)
class Proposal:
    remedy: str
    amount_cents: int  # money back to the buyer
    units: int  # units returned or reshipped
    why: str


class Triage(Protocol):
    """Proposes remedies for a ticket; a model-backed triage can replace the rules."""

    def propose(self, facts: TicketFacts) -> list[Proposal]: ...


@dataclass(frozen=True)
class RuleTriage:
    return_within_days: int = 7
    discount_bps: int = 3000  # 30% back for a minor flaw
    damaged_words: tuple[str, ...] = ("broken", "damaged", "rotten", "crushed", "leak", "坏", "烂", "破", "漏")
    missing_words: tuple[str, ...] = ("missing", "short", "lost", "少", "缺", "没收到")
    wrong_words: tuple[str, ...] = ("wrong", "not as described", "fake", "不符", "错", "假")
    minor_words: tuple[str, ...] = ("minor", "slight", "small", "scratch", "小", "轻微")

    def propose(self, facts: TicketFacts) -> list[Proposal]:
        text = facts.description.lower()
        has = {name: any(w in text for w in words) for name, words in
               (("damaged", self.damaged_words), ("missing", self.missing_words),
                ("wrong", self.wrong_words), ("minor", self.minor_words))}
        credible = bool(facts.photos) and all(
            p.taken_at is None or facts.paid_at is None or p.taken_at >= facts.paid_at for p in facts.photos)
        in_time = facts.paid_at is None or facts.now - facts.paid_at <= timedelta(days=self.return_within_days)
        unit = facts.order_amount_cents // max(1, facts.quantity)
        discount = Proposal(Remedy.DISCOUNT, facts.order_amount_cents * self.discount_bps // 10000, 0,
                            "keep the goods and get part of the money back")
        out: list[Proposal] = []
        if has["missing"]:
            out.append(Proposal(Remedy.RESHIP, 0, 1, "a unit is missing: send it again"))
        if (has["damaged"] or has["wrong"]) and credible and in_time:
            out.append(Proposal(Remedy.RETURN, unit, 1, "damaged or wrong goods with photo evidence"))
            out.append(Proposal(Remedy.RESHIP, 0, 1, "replace the damaged or wrong unit"))
        if has["minor"] or not out or credible:
            out.append(discount)
        seen: set[tuple[str, int]] = set()
        unique = []
        for p in out:
            if (p.remedy, p.amount_cents) not in seen:
                seen.add((p.remedy, p.amount_cents))
                unique.append(p)
        return unique
