"""Pure accountability rules: deductions, the score replay, traffic limits, recovery, exams, the case report.

The score history is never edited in place: it is replayed from the violations that still stand
(a won appeal voids one) and the exams passed, so restoring points also recomputes every limit
that followed from them.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tuangou.capacity import rules as capacity_rules


class ViolationKind(StrEnum):
    OVERSALE = "oversale"  # sold past what the merchant could deliver (confirmed)
    FALSE_CLAIM = "false_claim"  # an inventory change request that ops found false
    NON_SHIPMENT = "non_shipment"  # goods not shipped within the SLA (logistics)
    FAKE_SHIPMENT = "fake_shipment"  # a tracking number that never moved (logistics)
    BRUSHING = "brushing"  # fake orders on its own deals, confirmed by a risk review


class PenaltyKind(StrEnum):
    FINE = "fine"  # money taken from the merchant's settlement account
    DEPOSIT_DEDUCTION = "deposit_deduction"  # money taken from the merchant's deposit
    PROMOTION_BAN = "promotion_ban"  # may not publish large promotions until it ends
    LISTING_SUSPENSION = "listing_suspension"  # may not publish deals until it ends
    REMOVAL = "removal"  # cleared from the platform


class PenaltyStatus(StrEnum):
    ACTIVE = "active"  # in force until ends_at (or for good when ends_at is empty)
    LIFTED = "lifted"  # lifted early, e.g. by a won appeal; money given back


class TopUpStatus(StrEnum):
    PENDING = "pending"  # sent to the gateway, no answer yet (a retry with the same key asks again)
    SUCCEEDED = "succeeded"  # charged and booked into the deposit
    FAILED = "failed"  # declined by the gateway; nothing booked


class AppealStatus(StrEnum):
    OPEN = "open"  # waiting for ops
    UPHELD = "upheld"  # the merchant won: points restored, what followed lifted
    REJECTED = "rejected"  # the deduction or penalty stands


@dataclass(frozen=True)
class AccountabilityPolicy:
    """Seed numbers as defaults; ops edit them through the API (stored in the database)."""

    start_score: int = 100
    oversale_points: dict[str, int] = field(default_factory=lambda: {"catering": 5, "fresh": 8})
    oversale_points_other: int = 5
    false_claim_points: int = 20
    false_claim_listing_ban_days: int = 7
    false_claim_removal_count: int = 2  # this many standing false claims remove the merchant
    non_shipment_points: int = 5
    fake_shipment_points: int = 10
    brushing_points: int = 30
    limit_below_score: int = 80  # a deduction leaving a category score below this puts traffic limits on
    limited_exposure_percent: int = 50  # exposure while limited ("halved")
    normal_daily_intake: int | None = None  # orders a day without limits (None: no cap)
    limited_daily_intake: int = 20  # orders a day while limited
    clean_days: int = 7  # consecutive days without an over-sale needed to recover
    # repeat offences (seed 000: over-selling two weeks running): an over-sale while already limited and within
    # `repeat_window_days` of the previous one lengthens the limits; the `repeat_suspension_after`-th such repeat
    # in one spell of limits also suspends new listings
    repeat_window_days: int = 14
    repeat_clean_days: int = 14  # clean days needed to recover after a repeat offence (instead of clean_days)
    repeat_suspension_after: int = 2
    repeat_suspension_days: int = 7
    exam_pass_percent: int = 80
    exam_questions_per_attempt: int = 5  # drawn at random from the active bank in the merchant's language
    exam_retake_cooldown_hours: int = 24  # after a failed attempt, the next paper waits this long
    report_timezone: str = "Asia/Shanghai"
    # deposits (C7): the seeds give no figure, so no category needs one until ops set it
    min_deposit_cents: dict[str, int] = field(default_factory=dict)  # category -> deposit needed to publish
    min_deposit_cents_other: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AccountabilityPolicy:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


MAX_POLICY_NUMBER = 1_000_000


MAX_DEPOSIT_CENTS = 10**10


def _whole(value: Any, most: int = MAX_POLICY_NUMBER) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most


def change_problems(changes: dict[str, Any]) -> list[str]:
    """Type problems of a policy change, before it is applied."""
    known = {f.name for f in fields(AccountabilityPolicy)}
    problems = [f"unknown policy field {name!r}" for name in sorted(set(changes) - known)]
    for name, value in changes.items():
        if name in ("oversale_points", "min_deposit_cents"):
            most = MAX_DEPOSIT_CENTS if name == "min_deposit_cents" else MAX_POLICY_NUMBER
            if not isinstance(value, dict) or not all(isinstance(k, str) and _whole(v, most) for k, v in value.items()):
                problems.append(f"{name} must map categories to whole numbers")
        elif name == "report_timezone":
            if not isinstance(value, str) or not _valid_zone(value):
                problems.append("report_timezone must be a time zone name")
        elif name == "normal_daily_intake":
            if value is not None and not _whole(value):
                problems.append("normal_daily_intake must be empty or a whole number")
        elif name == "min_deposit_cents_other" and not _whole(value, MAX_DEPOSIT_CENTS):
            problems.append("min_deposit_cents_other must be a whole number of cents")
        elif name in known and name != "min_deposit_cents_other" and not _whole(value):
            problems.append(f"{name} must be a whole number from 0 to {MAX_POLICY_NUMBER}")
    return problems


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def policy_problems(p: AccountabilityPolicy) -> list[str]:
    problems = []
    numbers = {"start_score": p.start_score, "oversale_points_other": p.oversale_points_other,
               "false_claim_points": p.false_claim_points, "non_shipment_points": p.non_shipment_points,
               "fake_shipment_points": p.fake_shipment_points, "limited_daily_intake": p.limited_daily_intake,
               "clean_days": p.clean_days, "false_claim_listing_ban_days": p.false_claim_listing_ban_days,
               **{f"oversale_points.{k}": v for k, v in p.oversale_points.items()}}
    problems += [f"{name} must be >= 0" for name, value in numbers.items() if value < 0]
    for name, value in [("limited_exposure_percent", p.limited_exposure_percent),
                        ("exam_pass_percent", p.exam_pass_percent)]:
        if not 0 <= value <= 100:
            problems.append(f"{name} must be between 0 and 100")
    if p.repeat_suspension_after < 1 or p.repeat_suspension_days < 1:
        problems.append("repeat_suspension_after and repeat_suspension_days must be >= 1")
    if p.exam_questions_per_attempt < 1:
        problems.append("exam_questions_per_attempt must be >= 1")
    if p.false_claim_removal_count < 1:
        problems.append("false_claim_removal_count must be >= 1")
    if p.normal_daily_intake is not None and p.normal_daily_intake < p.limited_daily_intake:
        problems.append("normal_daily_intake cannot be below limited_daily_intake")
    return problems


def points_for(kind: ViolationKind, category: str, policy: AccountabilityPolicy) -> int:
    """Points one violation deducts from the merchant's score in `category`."""
    if kind == ViolationKind.OVERSALE:
        return policy.oversale_points.get(category, policy.oversale_points_other)
    return {ViolationKind.FALSE_CLAIM: policy.false_claim_points,
            ViolationKind.NON_SHIPMENT: policy.non_shipment_points,
            ViolationKind.FAKE_SHIPMENT: policy.fake_shipment_points,
            ViolationKind.BRUSHING: policy.brushing_points}[kind]


@dataclass(frozen=True)
class Deduction:
    violation_id: int
    at: datetime
    category: str
    kind: str
    points: int


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    event: str  # "deduction", "limited", "escalated" (a repeat offence) or "lifted"
    category: str | None = None
    points: int = 0
    score_after: int | None = None
    violation_id: int | None = None


@dataclass(frozen=True)
class Standing:
    scores: dict[str, int]
    limited: bool
    limited_since: datetime | None
    clean_since: datetime | None  # the clean-days clock runs from here while limited
    exam_passed: bool  # an exam passed since the limits began
    lift_at: datetime | None  # when limits lift given what is known (None: an exam is still needed)
    history: list[HistoryEntry]
    clean_days_needed: int = 7  # clean_days, or repeat_clean_days after a repeat offence in this spell
    repeat_offences: int = 0  # repeat offences in the current spell of limits


def replay(deductions: list[Deduction], exam_passes: list[datetime], policy: AccountabilityPolicy,
           now: datetime) -> Standing:
    """The merchant's standing at `now` from the violations that stand and the exams it passed.

    Limits start when a deduction leaves a category score below `limit_below_score`; they lift at
    the later of `clean_days` after the last over-sale (or the start of limits) and an exam passed
    since the limits began. An over-sale while limited, within `repeat_window_days` of the previous
    one, is a repeat offence: the spell then needs `repeat_clean_days` clean days.
    """
    scores: dict[str, int] = {}
    history: list[HistoryEntry] = []
    limited, since, clean = False, None, None
    need, repeats, last_oversale = policy.clean_days, 0, None
    passes = sorted(p for p in exam_passes if p <= now)

    def lift_time() -> datetime | None:
        if not limited or since is None or clean is None:
            return None
        passed = next((p for p in passes if p >= since), None)
        return None if passed is None else max(clean + timedelta(days=need), passed)

    for d in sorted(deductions, key=lambda d: (d.at, d.violation_id)):
        lift = lift_time()
        if lift is not None and lift <= d.at:
            limited, since, clean, need, repeats = False, None, None, policy.clean_days, 0
            history.append(HistoryEntry(lift, "lifted"))
        score = scores.get(d.category, policy.start_score) - d.points
        scores[d.category] = score
        history.append(HistoryEntry(d.at, "deduction", d.category, d.points, score, d.violation_id))
        if d.kind == ViolationKind.OVERSALE:
            if limited and is_repeat(last_oversale, d.at, policy):
                repeats, need = repeats + 1, max(need, policy.repeat_clean_days)
                history.append(HistoryEntry(d.at, "escalated", d.category, 0, score, d.violation_id))
            if limited:
                clean = d.at
            last_oversale = d.at
        if not limited and score < policy.limit_below_score:
            limited, since, clean = True, d.at, d.at
            history.append(HistoryEntry(d.at, "limited", d.category, 0, score, d.violation_id))
    lift = lift_time()
    if lift is not None and lift <= now:
        limited, since, clean, need, repeats = False, None, None, policy.clean_days, 0
        history.append(HistoryEntry(lift, "lifted"))
        lift = None
    passed = limited and since is not None and any(p >= since for p in passes)
    return Standing(scores, limited, since, clean, passed, lift, history, need, repeats)


def is_repeat(previous_oversale: datetime | None, at: datetime, policy: AccountabilityPolicy) -> bool:
    """An over-sale within the repeat window of the previous one (the caller checks the merchant is limited)."""
    return previous_oversale is not None and at - previous_oversale <= timedelta(days=policy.repeat_window_days)


def repeat_rule(policy: AccountabilityPolicy) -> str:
    """The repeat-offence rule in plain words, as merchants are told it."""
    return (f"over-selling again while limited, within {policy.repeat_window_days} days of the previous "
            f"over-sale, lengthens the limits to {policy.repeat_clean_days} clean days; at "
            f"{policy.repeat_suspension_after} such repeats new listings are suspended for "
            f"{policy.repeat_suspension_days} days")


def is_limited(limited: bool, lift_at: datetime | None, now: datetime) -> bool:
    """Limits stored earlier may already have lifted by the clock alone."""
    return limited and (lift_at is None or lift_at > now)


def exposure_percent(limited: bool, policy: AccountabilityPolicy) -> int:
    return policy.limited_exposure_percent if limited else 100


def daily_intake_cap(limited: bool, policy: AccountabilityPolicy) -> int | None:
    if limited:
        return policy.limited_daily_intake if policy.normal_daily_intake is None else min(
            policy.limited_daily_intake, policy.normal_daily_intake)
    return policy.normal_daily_intake


def rank_weight(score: int, limited: bool, policy: AccountabilityPolicy) -> int:
    """Listing weight: the category score times the exposure (halved while limited)."""
    return max(0, score) * exposure_percent(limited, policy)


def rank(weights: dict[int, int]) -> list[int]:
    """Deal ids by weight, highest first; ties by id so every listing is reproducible."""
    return sorted(weights, key=lambda deal_id: (-weights[deal_id], deal_id))


def recovery_steps(standing: Standing, policy: AccountabilityPolicy, now: datetime) -> list[str]:
    """What a limited merchant must still do, in plain words."""
    if not standing.limited or standing.clean_since is None:
        return []
    steps = []
    clean_until = standing.clean_since + timedelta(days=standing.clean_days_needed)
    if clean_until > now:
        steps.append(f"stay {standing.clean_days_needed} consecutive days without an over-sale "
                     f"(until {clean_until.isoformat()})")
    if not standing.exam_passed:
        steps.append(f"pass the compliance exam (pass mark {policy.exam_pass_percent}%)")
    return steps


@dataclass(frozen=True)
class ExamResult:
    correct: int
    total: int
    percent: int
    passed: bool


def grade(correct_answers: dict[int, int], given: dict[int, int], pass_percent: int) -> ExamResult:
    """Unanswered questions count as wrong; an empty bank cannot be passed."""
    total = len(correct_answers)
    correct = sum(1 for qid, right in correct_answers.items() if given.get(qid) == right)
    percent = correct * 100 // total if total else 0
    return ExamResult(correct, total, percent, total > 0 and percent >= pass_percent)


def min_deposit(category: str, policy: AccountabilityPolicy) -> int:
    """Deposit (cents) a merchant must hold to publish a deal of `category`."""
    return policy.min_deposit_cents.get(category, policy.min_deposit_cents_other)


def split_deduction(amount_cents: int, deposit_cents: int) -> tuple[int, int]:
    """(taken from the deposit, owed from settlements): a deduction never drives the deposit below zero."""
    taken = max(0, min(amount_cents, deposit_cents))
    return taken, amount_cents - taken


def draw_questions(question_ids: list[int], how_many: int, rng: random.Random) -> list[int]:
    """A paper: `how_many` distinct questions (all when the bank is smaller), in the drawn order."""
    return rng.sample(sorted(question_ids), min(how_many, len(question_ids)))


def retake_at(last_failed_at: datetime | None, policy: AccountabilityPolicy) -> datetime | None:
    """When the next paper may be drawn after a failed attempt (None: at once)."""
    return None if last_failed_at is None else last_failed_at + timedelta(hours=policy.exam_retake_cooldown_hours)


def previous_month(today: date) -> tuple[date, date, str]:
    """First day, first day of the next month, and the label of the month before `today`'s."""
    first_this = today.replace(day=1)
    last_prev = first_this - timedelta(days=1)
    first_prev = last_prev.replace(day=1)
    return first_prev, first_this, first_prev.strftime("%Y-%m")


def current_month(today: date) -> tuple[date, date, str]:
    """First day, first day of the next month, and the label of `today`'s month."""
    first = today.replace(day=1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    return first, next_first, first.strftime("%Y-%m")


def anonymise(text: str, names: list[str]) -> str:
    """Replace merchant, store and buyer names with neutral words."""
    for name in sorted((n for n in names if n.strip()), key=len, reverse=True):
        text = re.sub(re.escape(name), "the merchant", text, flags=re.IGNORECASE)
    return re.sub(r"[\w.+-]+@[\w-]+\.[\w.]+", "a buyer", text)


@dataclass(frozen=True)
class Case:
    category: str
    what_went_wrong: str
    oversold_units: int | None
    compensation_cents: int
    daily_reception: int | None
    activity_days: int | None
    sold: int | None


def case_report(month: str, cases: list[Case], safe_sales_ratio: float) -> dict[str, Any]:
    """The month's cases by category. `safe_sales_ratio` is capacity governance's (the one owner of the
    safe-sales rule, A9): the report teaches the number the calculator and the caps use."""
    by_category: dict[str, list[dict[str, Any]]] = {}
    for case in sorted(cases, key=lambda c: c.category):
        safe = (capacity_rules.safe_sales(case.daily_reception, case.activity_days, safe_sales_ratio)
                if case.daily_reception is not None and case.activity_days else None)
        by_category.setdefault(case.category, []).append({
            "case": f"{case.category}-{len(by_category.get(case.category, [])) + 1}",
            "what_went_wrong": case.what_went_wrong, "oversold_units": case.oversold_units,
            "sold": case.sold, "compensation_cents": case.compensation_cents,
            "daily_reception": case.daily_reception, "activity_days": case.activity_days,
            "safe_sales": safe})
    return {"month": month, "cases": len(cases),
            "compensation_cents": sum(c.compensation_cents for c in cases),
            "safe_sales_rule": f"daily reception x activity days x {safe_sales_ratio:g}",
            "safe_sales_buffer_percent": round((1 - safe_sales_ratio) * 100),
            "categories": [{"category": k, "cases": v} for k, v in by_category.items()]}


def report_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Over-selling cases, {report['month']}{' (so far)' if report.get('so_far') else ''}", "",
             f"{report['cases']} case(s); compensation paid {report['compensation_cents'] / 100:.2f} yuan.",
             f"Safe sales = {report['safe_sales_rule']}: sell no more than that, keep "
             f"{report.get('safe_sales_buffer_percent', 20)}% for surprises.", ""]
    for group in report["categories"]:
        lines += [f"## {group['category']}", ""]
        for c in group["cases"]:
            safe = c["safe_sales"] if c["safe_sales"] is not None else "n/a"
            lines.append(f"- **{c['case']}**: {c['what_went_wrong']} (over-sold: {c['oversold_units'] or 'n/a'}, "
                         f"compensation {c['compensation_cents'] / 100:.2f} yuan, safe sales {safe})")
        lines.append("")
    if not report["categories"]:
        lines.append("No over-selling cases this month.")
    return "\n".join(lines) + "\n"
