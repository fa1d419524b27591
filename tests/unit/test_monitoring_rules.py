"""KPI rules: folding events, deviations, the three levels and what each rise sets off."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tuangou.monitoring import rules
from tuangou.monitoring.rules import Action, Direction, Level, MonitoringPolicy, Tally

POLICY = MonitoringPolicy()


def test_levels_follow_the_seed_thresholds():
    assert [rules.level_of(d, POLICY) for d in (0, 9.9, 10, 29.9, 30, 49.9, 50, 100)] == [
        Level.GREEN, Level.GREEN, Level.YELLOW, Level.YELLOW, Level.ORANGE, Level.ORANGE, Level.RED, Level.RED]


def test_deviation_counts_only_the_bad_side():
    assert rules.deviation_percent(0.45, 0.9, Direction.HIGHER) == 50.0
    assert rules.deviation_percent(0.95, 0.9, Direction.HIGHER) == 0.0
    assert rules.deviation_percent(0.075, 0.05, Direction.LOWER) == 50.0
    assert rules.deviation_percent(0.01, 0.05, Direction.LOWER) == 0.0


@given(st.sampled_from(list(Level)), st.sampled_from(list(Level)), st.booleans())
def test_only_a_rise_acts_and_each_crossed_level_acts_once(old, new, paused):
    actions = rules.transition_actions(old, new, paused)
    if new <= old:
        assert actions == []
    assert (Action.OPEN_CHECK in actions) == (old < Level.YELLOW <= new)
    assert (Action.ESCALATE in actions) == (old < Level.ORANGE <= new)
    assert (Action.PAUSE in actions) == (old < Level.RED <= new and not paused)


@given(st.lists(st.tuples(st.sampled_from(["OrderPlaced", "OrderPaid", "RefundOwed", "DisputeOpened", "Other"]),
                          st.integers(0, 10_000)), max_size=40))
def test_tallies_fold_in_any_split(events):
    # folding a batch at once or one event at a time gives the same tally
    whole, single = Tally(), Tally()
    for type_, cents in events:
        t = rules.fold(type_, {"amount_cents": cents})
        if t is not None:
            whole.add(t)
    for type_, cents in events:
        part = Tally()
        t = rules.fold(type_, {"amount_cents": cents})
        if t is not None:
            part.add(t)
        single.add(part)
    assert whole == single
    assert whole.paid == sum(1 for e in events if e[0] == "OrderPaid")


def test_too_few_orders_are_not_judged():
    policy = MonitoringPolicy(min_paid_orders=3)
    t = Tally(placed=2, paid=2, paid_cents=100)
    assert rules.judge(t, {"average_order_value_cents": 10_000}, policy).level is Level.GREEN
    t = Tally(placed=3, paid=3, paid_cents=300)
    assert rules.judge(t, {"average_order_value_cents": 10_000}, policy).level is Level.RED


def test_line_paused_and_city_of_address():
    assert rules.line_paused({("bakery", "Shanghai")}, "bakery", "Shanghai")
    assert not rules.line_paused({("bakery", "Shanghai")}, "bakery", "Beijing")
    assert rules.city_of("Chaoyang, Beijing") == "Beijing"
    assert rules.city_of("") == "-"


def test_policy_problems_name_unknown_kpis_and_bad_levels():
    assert rules.policy_problems(POLICY) == []
    bad = MonitoringPolicy(targets={"happiness": 1.0}, yellow_percent=40, orange_percent=30)
    assert len(rules.policy_problems(bad)) == 2


def test_a_price_adjustment_makes_the_sale_cheaper_and_is_no_refund():
    # a group-buy's tier refund is the sale ending up cheaper: it lowers what was paid, not the refund rate
    adjusted = rules.fold("RefundOwed", {"amount_cents": 1000, "price_adjustment": True})
    refunded = rules.fold("RefundOwed", {"amount_cents": 1000})
    assert adjusted is not None and (adjusted.paid_cents, adjusted.refunded_cents) == (-1000, 0)
    assert refunded is not None and (refunded.paid_cents, refunded.refunded_cents) == (0, 1000)
