"""Pure risk rules: the policy, sliding-window arithmetic, the order-path decision with its words,
the after-the-fact rules (compensation abuse, coupon funnels), store reputation bands. No I/O; `now`
is always a parameter."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

SCOPES = ("buyer", "device", "ip", "address", "phone", "payment")
SHARED_SCOPES = ("device", "address", "payment", "phone")  # where many accounts on one value is suspicious
SCOPE_WORDS = {"buyer": "this account", "device": "one device", "ip": "one network address",
               "address": "one delivery address", "phone": "one recipient phone", "payment": "one payment account"}


class Action(StrEnum):
    PASS = "pass"  # the order goes on
    HOLD = "hold"  # the order keeps its units but waits for ops (not payable meanwhile)
    REJECT = "reject"  # the order is refused; nothing is kept


class CaseKind(StrEnum):
    ORDER_HOLD = "order_hold"  # an order held on the order path
    COMPENSATION_ABUSE = "compensation_abuse"  # a buyer with far more disputes/compensation than the norm
    COUPON_FUNNEL = "coupon_funnel"  # compensation coupons of many accounts behind one device/address/payment


class CaseStatus(StrEnum):
    OPEN = "open"  # waiting for ops
    CONFIRMED = "confirmed"  # ops confirmed the suspicion; the outcome's effects were applied
    RELEASED = "released"  # a false positive: the held order went on


class Outcome(StrEnum):
    BRUSHING = "brushing"  # fake orders for the merchant: violation + penalty, fake sales removed
    ABUSE = "abuse"  # compensation abuse: compensation paused, unused compensation coupons revoked
    FRAUD = "fraud"  # bad orders otherwise (stock lock-up): the held orders are cancelled
    FALSE_POSITIVE = "false_positive"  # nothing wrong: released


@dataclass(frozen=True)
class RiskPolicy:
    """Seed numbers as defaults; ops change them through the API (stored as policy row "risk")."""

    window_minutes: int = 10
    # velocity: more orders than this from one value in the sliding window → hold / reject
    hold_orders: dict[str, int] = field(default_factory=lambda: {
        "buyer": 20, "device": 20, "ip": 100, "address": 15, "phone": 15, "payment": 15})
    reject_orders: dict[str, int] = field(default_factory=lambda: {
        "buyer": 60, "device": 60, "ip": 500, "address": 60, "phone": 60, "payment": 60})
    # sharing: more accounts than this on one value in the window → hold
    hold_accounts: dict[str, int] = field(default_factory=lambda: {
        "device": 2, "address": 3, "phone": 3, "payment": 2})
    # stock lock-up: more units reserved than this in the window by one buyer or device → hold
    hold_units: int = 30
    linked_merchant: str = "hold"  # an account linked to the deal's merchant buys it: hold / reject / pass
    # compensation abuse (a job): disputes per paid order at least `abuse_factor` x the platform's norm
    abuse_lookback_days: int = 90
    abuse_min_disputes: int = 3
    abuse_factor: int = 3
    abuse_min_rate_percent: int = 20  # and at least this share of the buyer's orders disputed
    # coupon funnel (a job): compensation coupons of this many accounts behind one device/address/payment
    funnel_accounts: int = 3
    brushing_fine_cents: int = 50_000
    graph_orders: int = 200  # evidence graph: at most this many linked orders

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def policy_from_dict(data: dict[str, Any] | None, base: RiskPolicy | None = None) -> RiskPolicy:
    """Merge `data` over `base`; ValueError names the first problem."""
    base = base or RiskPolicy()
    if not data:
        return base
    known = {f.name for f in fields(RiskPolicy)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown risk policy field {unknown[0]!r}")
    merged = {**asdict(base)}
    for name, value in data.items():
        current = merged[name]
        if isinstance(current, dict):
            if not isinstance(value, dict) or not all(k in SCOPES and _whole(v) for k, v in value.items()):
                raise ValueError(f"{name} must map scopes ({', '.join(SCOPES)}) to whole numbers")
            merged[name] = {**current, **value}
        elif name == "linked_merchant":
            if value not in (Action.PASS, Action.HOLD, Action.REJECT):
                raise ValueError("linked_merchant must be pass, hold or reject")
            merged[name] = str(value)
        elif not _whole(value) or (name in ("window_minutes", "abuse_factor", "funnel_accounts") and value < 1):
            raise ValueError(f"{name} must be a whole number (at least 1 for windows and factors)")
        else:
            merged[name] = value
    return RiskPolicy(**merged)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000_000


# ---- windows ---------------------------------------------------------------------------------------

def window_of(epoch_seconds: float, window_minutes: int) -> tuple[int, float]:
    """The fixed window a moment falls in and how far into it (0..1)."""
    length = window_minutes * 60
    win = int(epoch_seconds // length)
    return win, (epoch_seconds - win * length) / length


@dataclass(frozen=True)
class Count:
    """One signal value's counters as the window upsert returned them (this order included)."""

    scope: str
    n: int
    prev_n: int
    units: int
    prev_units: int
    accounts: int
    prev_accounts: int

    def sliding(self, into: float) -> tuple[int, int, int]:
        """(orders, units, accounts) in the sliding window: the current fixed window plus the part of
        the previous one still inside it. Rounded down, so a fresh window never overstates."""
        carry = 1.0 - into
        return (self.n + int(self.prev_n * carry), self.units + int(self.prev_units * carry),
                self.accounts + int(self.prev_accounts * carry))


def accounts_in(accts: str) -> int:
    """",3,7," holds two accounts."""
    return max(0, accts.count(",") - 1)


# ---- the order-path decision -----------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    rule: str
    words: str
    action: Action


@dataclass(frozen=True)
class Decision:
    action: Action
    hits: list[Hit]

    def as_json(self) -> list[dict[str, str]]:
        return [{"rule": h.rule, "words": h.words, "action": h.action.value} for h in self.hits]


def _orders(n: int) -> str:
    return f"{n} order{'s' if n != 1 else ''}"


def decide(counts: list[Count], into: float, link: str | None, policy: RiskPolicy) -> Decision:
    """Pass, hold or reject an order from its window counts (this order included) and whether the buyer
    is linked to the deal's merchant; every hit says what it saw."""
    minutes = policy.window_minutes
    hits: list[Hit] = []
    for c in counts:
        n, units, accounts = c.sliding(into)
        where = SCOPE_WORDS[c.scope]
        who = f" from {accounts} accounts" if c.scope != "buyer" and accounts > 1 else ""
        reject, hold = policy.reject_orders.get(c.scope), policy.hold_orders.get(c.scope)
        if reject is not None and n > reject:
            hits.append(Hit(f"velocity.{c.scope}", f"{_orders(n)}{who} on {where} in {minutes} minutes "
                            f"(more than {reject} is refused)", Action.REJECT))
        elif hold is not None and n > hold:
            hits.append(Hit(f"velocity.{c.scope}", f"{_orders(n)}{who} on {where} in {minutes} minutes "
                            f"(more than {hold} is held)", Action.HOLD))
        shared = policy.hold_accounts.get(c.scope)
        if shared is not None and accounts > shared:
            hits.append(Hit(f"shared.{c.scope}", f"{accounts} accounts on {where} in {minutes} minutes "
                            f"({_orders(n)}; more than {shared} accounts is held)", Action.HOLD))
        if c.scope in ("buyer", "device") and units > policy.hold_units:
            hits.append(Hit(f"lockup.{c.scope}", f"{units} units reserved by {where} in {minutes} minutes "
                            f"(more than {policy.hold_units} is held)", Action.HOLD))
    if link is not None and policy.linked_merchant != Action.PASS:
        what = {"staff": "is the merchant's own staff account", "device": "uses the merchant's device",
                "address": "ships to the merchant's address",
                "payment": "pays with the merchant's payment account"}.get(link, f"is linked to the merchant ({link})")
        hits.append(Hit("linked_merchant", f"the buyer {what} and buys its deal", Action(policy.linked_merchant)))
    action = Action.PASS
    if any(h.action == Action.REJECT for h in hits):
        action = Action.REJECT
    elif hits:
        action = Action.HOLD
    return Decision(action, hits)


def refusal_words(decision: Decision) -> str:
    return "; ".join(h.words for h in decision.hits if h.action == Action.REJECT)


# ---- after the fact: compensation abuse and coupon funnels -------------------------------------------

@dataclass(frozen=True)
class BuyerRecord:
    buyer_id: int
    orders: int  # paid orders in the lookback
    disputes: int  # disputes opened in the lookback
    compensation_cents: int  # compensation coupons received


def abusers(records: list[BuyerRecord], policy: RiskPolicy) -> list[tuple[int, str]]:
    """Buyers whose disputes per order are far above the platform's norm, with the words why."""
    orders = sum(r.orders for r in records)
    disputes = sum(r.disputes for r in records)
    if not orders:
        return []
    norm = disputes / orders
    found = []
    for r in records:
        if r.disputes < policy.abuse_min_disputes or not r.orders:
            continue
        rate = r.disputes / r.orders
        if rate * 100 >= policy.abuse_min_rate_percent and rate >= policy.abuse_factor * norm:
            per_order = r.compensation_cents // r.orders
            found.append((r.buyer_id, f"{r.disputes} disputes on {_orders(r.orders)} in {policy.abuse_lookback_days} "
                                      f"days ({round(rate * 100)}% against a norm of {round(norm * 100, 1)}%), "
                                      f"{per_order} cents of compensation per order"))
    return found


def funnel_words(scope: str, accounts: int, coupons: int, cents: int) -> str:
    return (f"{coupons} compensation coupons ({cents} cents) went to {accounts} accounts on "
            f"{SCOPE_WORDS[scope]}")


# ---- review outcomes and what buyers see ------------------------------------------------------------

def false_positive_rates(decided: list[tuple[list[str], str]]) -> dict[str, dict[str, Any]]:
    """Per rule: how many decided cases it hit and the share released as false positives."""
    stats: dict[str, dict[str, Any]] = {}
    for rules_hit, outcome in decided:
        for rule in set(rules_hit):
            s = stats.setdefault(rule, {"decided": 0, "false_positives": 0})
            s["decided"] += 1
            s["false_positives"] += outcome == Outcome.FALSE_POSITIVE
    for s in stats.values():
        s["false_positive_rate"] = round(s["false_positives"] / s["decided"], 3)
    return dict(sorted(stats.items()))


def score_band(score: int) -> str:
    """What buyers see of a merchant's score: a band, not the number."""
    for floor, band in ((95, "A"), (85, "B"), (70, "C")):
        if score >= floor:
            return band
    return "D"


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None
