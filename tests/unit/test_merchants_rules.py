"""Pure accountability rules: deductions, thresholds, exposure, recovery, exams, safe sales."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tuangou.merchants import rules
from tuangou.merchants.rules import AccountabilityPolicy, Deduction, ViolationKind

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
POLICY = AccountabilityPolicy()


def _oversale(n: int, day: float, category: str = "fresh", points: int = 8) -> Deduction:
    return Deduction(n, T0 + timedelta(days=day), category, ViolationKind.OVERSALE, points)


def test_deductions_follow_the_category_and_the_kind():
    assert rules.points_for(ViolationKind.OVERSALE, "catering", POLICY) == 5
    assert rules.points_for(ViolationKind.OVERSALE, "fresh", POLICY) == 8
    assert rules.points_for(ViolationKind.OVERSALE, "bakery", POLICY) == POLICY.oversale_points_other
    assert rules.points_for(ViolationKind.FALSE_CLAIM, "fresh", POLICY) == 20
    custom = AccountabilityPolicy(oversale_points={"bakery": 3}, non_shipment_points=7, fake_shipment_points=11)
    assert rules.points_for(ViolationKind.OVERSALE, "bakery", custom) == 3
    assert rules.points_for(ViolationKind.NON_SHIPMENT, "fresh", custom) == 7
    assert rules.points_for(ViolationKind.FAKE_SHIPMENT, "fresh", custom) == 11


def test_limits_start_when_a_score_falls_below_the_threshold():
    # given two fresh over-sales: 100 -> 92 -> 84, still at or above 80
    two = rules.replay([_oversale(1, 0), _oversale(2, 5)], [], POLICY, T0 + timedelta(days=6))
    assert two.scores == {"fresh": 84} and not two.limited
    # when a third comes: 76 < 80
    three = rules.replay([_oversale(1, 0), _oversale(2, 5), _oversale(3, 10)], [], POLICY, T0 + timedelta(days=11))
    # then traffic limits are on from that moment
    assert three.scores == {"fresh": 76} and three.limited
    assert three.limited_since == T0 + timedelta(days=10)
    assert [h.event for h in three.history] == ["deduction", "deduction", "deduction", "limited"]


def test_scores_are_kept_per_category():
    st_ = rules.replay([_oversale(1, 0, "catering", 5), _oversale(2, 1)], [], POLICY, T0 + timedelta(days=2))
    assert st_.scores == {"catering": 95, "fresh": 92}


def test_exposure_is_halved_and_intake_cut_only_while_limited():
    policy = AccountabilityPolicy(normal_daily_intake=50)
    assert rules.exposure_percent(False, policy) == 100 and rules.exposure_percent(True, policy) == 50
    assert rules.daily_intake_cap(False, policy) == 50 and rules.daily_intake_cap(True, policy) == 20
    assert rules.daily_intake_cap(False, POLICY) is None  # no cap unless ops set one


def test_recovery_needs_both_seven_clean_days_and_a_passed_exam():
    history = [_oversale(1, 0), _oversale(2, 1), _oversale(3, 2)]  # limited from day 2
    exam_day_4 = [T0 + timedelta(days=4)]
    # exam passed, but only 5 clean days
    early = rules.replay(history, exam_day_4, POLICY, T0 + timedelta(days=7))
    assert early.limited and early.exam_passed and early.lift_at == T0 + timedelta(days=9)
    # 7 clean days, no exam
    no_exam = rules.replay(history, [], POLICY, T0 + timedelta(days=30))
    assert no_exam.limited and no_exam.lift_at is None
    assert any("exam" in s for s in rules.recovery_steps(no_exam, POLICY, T0 + timedelta(days=30)))
    # both
    both = rules.replay(history, exam_day_4, POLICY, T0 + timedelta(days=9))
    assert not both.limited and both.history[-1].event == "lifted"
    assert both.scores == {"fresh": 76}  # recovery lifts traffic limits; the points stay


def test_an_exam_passed_before_the_limits_does_not_count():
    history = [_oversale(1, 0), _oversale(2, 1), _oversale(3, 2)]
    st_ = rules.replay(history, [T0], POLICY, T0 + timedelta(days=20))
    assert st_.limited and not st_.exam_passed


def test_an_over_sale_while_limited_restarts_the_clean_days():
    # (within 14 days of the previous one it is also a repeat offence: 14 clean days, not 7)
    history = [_oversale(1, 0), _oversale(2, 1), _oversale(3, 2), _oversale(4, 6)]
    st_ = rules.replay(history, [T0 + timedelta(days=3)], POLICY, T0 + timedelta(days=10))
    assert st_.limited and st_.lift_at == T0 + timedelta(days=20)
    plain = AccountabilityPolicy(repeat_clean_days=POLICY.clean_days)
    st_ = rules.replay(history, [T0 + timedelta(days=3)], plain, T0 + timedelta(days=10))
    assert st_.limited and st_.lift_at == T0 + timedelta(days=13)


def test_limits_lifted_then_a_new_violation_limits_again():
    history = [_oversale(1, 0), _oversale(2, 1), _oversale(3, 2), _oversale(4, 20)]
    st_ = rules.replay(history, [T0 + timedelta(days=3)], POLICY, T0 + timedelta(days=21))
    assert st_.limited and st_.limited_since == T0 + timedelta(days=20)
    assert [h.event for h in st_.history][-3:] == ["lifted", "deduction", "limited"]


def test_ranking_weighs_the_score_and_halves_limited_merchants():
    assert rules.rank_weight(100, False, POLICY) > rules.rank_weight(95, False, POLICY)
    assert rules.rank_weight(90, True, POLICY) == rules.rank_weight(45, False, POLICY)
    assert rules.rank({7: 9500, 3: 10000, 5: 9500, 9: 3800}) == [3, 5, 7, 9]


@given(st.lists(st.tuples(st.sampled_from(["fresh", "catering", "bakery"]), st.integers(0, 30)), max_size=12),
       st.lists(st.integers(0, 40), max_size=3), st.integers(0, 60))
def test_replay_invariants(events, exam_days, now_day):
    deductions = [Deduction(i, T0 + timedelta(days=d), c, ViolationKind.OVERSALE,
                            rules.points_for(ViolationKind.OVERSALE, c, POLICY)) for i, (c, d) in enumerate(events)]
    passes = [T0 + timedelta(days=d) for d in exam_days]
    now = T0 + timedelta(days=max([now_day, *[d for _, d in events]]))
    st_ = rules.replay(deductions, passes, POLICY, now)
    # scores are the start minus every standing deduction, per category
    for category in {c for c, _ in events}:
        assert st_.scores[category] == POLICY.start_score - sum(d.points for d in deductions if d.category == category)
    # never limited without a score below the threshold at some point
    if all(s >= POLICY.limit_below_score for s in st_.scores.values()):
        assert not st_.limited
    # limited means a step is left to do
    if st_.limited:
        assert rules.recovery_steps(st_, POLICY, now)


def test_exam_grading_counts_unanswered_as_wrong():
    bank = {1: 0, 2: 2, 3: 1, 4: 3, 5: 0}
    assert rules.grade(bank, {1: 0, 2: 2, 3: 1, 4: 3}, 80) == rules.ExamResult(4, 5, 80, True)
    assert rules.grade(bank, {1: 0, 2: 2, 3: 1}, 80).passed is False
    assert rules.grade({}, {}, 0).passed is False


def test_the_case_report_takes_the_one_safe_sales_ratio_and_keeps_its_buffer():
    case = rules.Case("fresh", "sold 120 with 100 in store", 20, 10000, 20, 31, 120)
    seed = rules.case_report("2026-11", [case], 0.8)
    assert seed["categories"][0]["cases"][0]["safe_sales"] == 496
    assert "keep 20% for surprises" in rules.report_markdown(seed)
    halved = rules.case_report("2026-11", [case], 0.5)
    assert halved["categories"][0]["cases"][0]["safe_sales"] == 310 and halved["safe_sales_rule"].endswith("x 0.5")
    assert "keep 50% for surprises" in rules.report_markdown(halved)
    assert "safe_sales_percent" not in AccountabilityPolicy().to_dict()  # one owner: capacity governance


def test_previous_month_and_anonymising():
    assert rules.previous_month(date(2026, 12, 1)) == (date(2026, 11, 1), date(2026, 12, 1), "2026-11")
    assert rules.previous_month(date(2027, 1, 15))[2] == "2026-12"
    assert rules.current_month(date(2026, 12, 31)) == (date(2026, 12, 1), date(2027, 1, 1), "2026-12")
    assert rules.current_month(date(2027, 1, 31))[1] == date(2027, 2, 1)
    text = rules.anonymise("Berry Farm sold 120 strawberry boxes; buyer x@y.cn complained", ["Berry Farm"])
    assert "Berry" not in text and "x@y.cn" not in text


def test_policy_problems_are_reported():
    bad = AccountabilityPolicy(limited_exposure_percent=150, normal_daily_intake=10, false_claim_removal_count=0)
    problems = rules.policy_problems(bad)
    assert len(problems) == 3
    assert rules.policy_problems(POLICY) == []


def test_policy_changes_are_type_checked():
    assert rules.change_problems({"limited_daily_intake": 10, "normal_daily_intake": None,
                                  "oversale_points": {"fresh": 9}, "report_timezone": "Asia/Shanghai"}) == []
    bad = {"start_score": True, "clean_days": 1.5, "oversale_points": {"fresh": "8"}, "report_timezone": "Mars/Base",
           "limited_daily_intake": 10**12, "bonus": 1}
    assert len(rules.change_problems(bad)) == 6


def test_over_selling_again_while_limited_lengthens_the_limits():
    # given limits from the third over-sale (day 2) and an exam passed on day 3
    history = [_oversale(1, 0), _oversale(2, 1), _oversale(3, 2)]
    exam = [T0 + timedelta(days=3)]
    plain = rules.replay(history, exam, POLICY, T0 + timedelta(days=4))
    assert plain.lift_at == T0 + timedelta(days=9) and plain.repeat_offences == 0
    # when the merchant over-sells again on day 5, within 14 days of the previous over-sale
    again = rules.replay([*history, _oversale(4, 5)], exam, POLICY, T0 + timedelta(days=6))
    # then it is a repeat offence: 14 clean days from day 5, said in the steps and the history
    assert again.repeat_offences == 1 and again.clean_days_needed == 14
    assert again.lift_at == T0 + timedelta(days=19)
    assert "14 consecutive days" in rules.recovery_steps(again, POLICY, T0 + timedelta(days=6))[0]
    assert [h.event for h in again.history][-2:] == ["deduction", "escalated"]
    # and once the limits lift, the next spell starts from the plain rule again
    later = rules.replay([*history, _oversale(4, 5), _oversale(5, 40)], exam, POLICY, T0 + timedelta(days=41))
    assert later.limited and later.repeat_offences == 0 and later.clean_days_needed == 7


def test_an_over_sale_after_the_window_is_not_a_repeat():
    # limited without an exam for a month: the next over-sale is 20 days after the previous one
    history = [_oversale(1, 0), _oversale(2, 1), _oversale(3, 2), _oversale(4, 22)]
    st_ = rules.replay(history, [], POLICY, T0 + timedelta(days=23))
    assert st_.limited and st_.repeat_offences == 0 and st_.clean_days_needed == 7
