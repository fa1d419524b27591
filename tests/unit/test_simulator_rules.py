"""The simulator's outcome model and world: pure, so checked without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from tuangou.simulator import config, rules, world

DAY = date(2026, 11, 23)
AT = datetime(2026, 11, 23, 4, tzinfo=UTC)


def test_a_buyer_served_on_the_chosen_day_is_served():
    r = rules.BuyerRecord(1, 0, 1, 1000, DAY, served_on=DAY)
    assert rules.classify(r) == rules.Outcome.SERVED


def test_a_buyer_moved_before_the_day_and_served_later_is_not_harmed():
    r = rules.BuyerRecord(1, 0, 1, 1000, DAY, served_on=date(2026, 11, 24))
    assert rules.classify(r) == rules.Outcome.MOVED_WITH_NOTICE
    assert rules.classify(r) not in rules.HARMED


def test_a_harmed_buyer_is_compensated_refunded_or_left_without_remedy():
    harmed = rules.BuyerRecord(1, 0, 1, 1000, DAY, failed_at=AT)
    assert rules.classify(harmed) == rules.Outcome.UNREMEDIED
    harmed.remedied_at, harmed.remedy_refund_cents = AT, 1000
    assert rules.classify(harmed) == rules.Outcome.REFUNDED
    harmed.remedy_extra_cents = 3000
    assert rules.classify(harmed) == rules.Outcome.COMPENSATED


def test_a_refund_before_the_day_is_not_harm():
    r = rules.BuyerRecord(1, 0, 1, 1000, DAY, refunded_before_service=True)
    assert rules.classify(r) == rules.Outcome.REFUNDED_WITH_NOTICE


@given(st.lists(st.tuples(st.integers(1, 2), st.integers(0, 1439)), max_size=40), st.integers(0, 30))
def test_a_store_never_serves_more_than_it_can_and_every_visitor_is_accounted_for(visits, capacity):
    given_visits = [rules.Visit(i, q, m) for i, (q, m) in enumerate(visits)]
    served, failed, left = rules.serve(given_visits, capacity)
    units = {v.order_id: v.quantity for v in given_visits}
    assert sorted(served + failed) == list(range(len(visits)))
    assert sum(units[i] for i in served) == capacity - left <= capacity
    assert all(units[i] > left for i in failed)  # nobody failed while there was room for them


def test_percentiles_use_the_nearest_rank():
    assert rules.percentile([], 99) is None
    assert rules.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert rules.percentile([float(i) for i in range(1, 101)], 99) == 99.0


def test_the_same_seed_builds_the_same_world_and_another_seed_another():
    cfg = config.load(None)
    a, b, c = world.build(cfg, 30, 3, seed=5), world.build(cfg, 30, 3, seed=5), world.build(cfg, 30, 3, seed=6)
    assert a.orders == b.orders and a.stores == b.stores and a.disruptions == b.disruptions
    assert a.orders != c.orders


def test_weekends_need_more_capacity_and_disruptions_take_it_away():
    cfg = config.merge(config.load(None), {"world": {"disruption_rate": 1.0}})
    city = world.build(cfg, 20, 7, seed=1)
    for d in city.disruptions:
        s = city.stores[d.store]
        full = round(s.capacity * (s.weekend_factor if city.date_of(d.day).weekday() >= 5 else 1.0))
        assert city.capacity_on(d.store, d.day) < full or full == 0
    saturday = [city.capacity_on(s.index, 5) for s in city.stores]
    assert len(city.disruptions) == 20 * 7 and saturday


def test_a_toml_file_changes_only_what_it_names(tmp_path):
    path = tmp_path / "what-if.toml"
    path.write_text("[on.policies.governance]\ncompensation_coupon_cents = 1000\n[world]\ncapacity_max = 9\n")
    cfg = config.load(path)
    assert cfg["on"]["policies"]["governance"] == {"compensation_coupon_cents": 1000}
    assert cfg["world"]["capacity_max"] == 9 and cfg["world"]["capacity_min"] == 3
    assert cfg["off"]["policies"]["governance"]["circuit_breaker"] is False
