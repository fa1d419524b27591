"""Pure logistics rules: deadlines, compensation, tracking checks, event folding, performance rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuangou.logistics import rules

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
P = rules.LogisticsPolicy()


@given(st.integers(min_value=1, max_value=10**9))
def test_compensation_is_thirty_percent_between_five_and_five_hundred_yuan(paid):
    c = rules.late_compensation(paid, P)
    assert 500 <= c <= 50000
    assert c == max(500, min(50000, paid * 3 // 10))


def test_a_free_order_gets_no_compensation():
    assert rules.late_compensation(0, P) == 0


def test_the_deadline_is_48_hours_per_category_and_a_group_buy_waits_for_its_delivery_time():
    fast = rules.policy_from_dict({"ship_within_minutes_by_category": {"fresh": 24 * 60}})
    assert rules.ship_deadline(T0, "bakery", fast) == T0 + timedelta(hours=48)
    assert rules.ship_deadline(T0, "fresh", fast) == T0 + timedelta(hours=24)
    assert rules.ship_deadline(T0, "fresh", fast, T0 + timedelta(days=5)) == T0 + timedelta(days=5)
    assert rules.warn_at(T0 + timedelta(hours=48), P) == T0 + timedelta(hours=36)


@pytest.mark.parametrize("bad", [{"nope": 1}, {"compensation_bps": -1}, {"compensation_bps": 10001},
                                 {"compensation_min_cents": 60000}, {"ship_within_minutes": True},
                                 {"ship_within_minutes_by_category": [1]},
                                 {"ship_within_minutes_by_category": {"moon": 1}}])
def test_nonsense_policies_are_refused(bad):
    with pytest.raises(ValueError):
        rules.policy_from_dict(bad)


@given(st.integers(0, 20), st.integers(0, 20), st.integers(-5, 25))
def test_units_never_exceed_the_order(quantity, shipped, units):
    problem = rules.units_problem(quantity, shipped, units)
    assert (problem is None) == (units > 0 and shipped + units <= quantity)


def test_pause_is_the_exception_span_capped_by_policy():
    assert rules.pause_minutes(T0, T0 + timedelta(hours=6), P) == 360
    assert rules.pause_minutes(T0, T0 + timedelta(days=30), P) == P.max_pause_minutes
    assert rules.pause_minutes(T0, T0 - timedelta(hours=1), P) == 0


def test_tracking_numbers_match_the_whole_pattern_and_far_scans_are_measured():
    assert rules.tracking_number_ok("^SF[0-9]{12}$", "SF123456789012")
    assert not rules.tracking_number_ok("SF[0-9]{3}", "SF1234")
    assert rules.pattern_problem("([") is not None
    beijing, shanghai = (39.9, 116.4), (31.2, 121.5)
    assert 1000 < rules.distance_km(*beijing, *shanghai) < 1100
    assert rules.far_first_scan(beijing, (39.95, 116.45), P) is None
    assert rules.far_first_scan(beijing, shanghai, P) is not None


def _ev(i, kind, minutes, **kw):
    return rules.CarrierEvent(str(i), "N1", rules.EventKind(kind), T0 + timedelta(minutes=minutes), **kw)


EVENTS = [_ev(1, "scan", 10, lat=1.0, lon=2.0), _ev(2, "position", 20), _ev(3, "temperature", 30, temperature_c=9.0),
          _ev(4, "exception", 35), _ev(5, "delivered", 40)]


@given(st.permutations(EVENTS), st.integers(1, 4))
def test_folding_batches_in_any_order_ends_in_the_same_state(order, cut):
    whole = rules.fold_events(EVENTS, (0.0, 6.0))
    a, b = rules.fold_events(order[:cut], (0.0, 6.0)), rules.fold_events(order[cut:], (0.0, 6.0))

    def merge(x, y, pick):
        vals = [v for v in (x, y) if v is not None]
        return pick(vals) if vals else None
    assert merge(a.first_scan_at, b.first_scan_at, min) == whole.first_scan_at
    assert merge(a.last_event_at, b.last_event_at, max) == whole.last_event_at
    assert merge(a.delivered_at, b.delivered_at, min) == whole.delivered_at
    assert merge(a.excursion_at, b.excursion_at, min) == whole.excursion_at == T0 + timedelta(minutes=30)
    assert whole.first_scan_lat == 1.0


def test_events_from_the_future_or_without_a_reading_are_refused():
    assert rules.event_problem(_ev(1, "scan", 0), T0, P) is None
    assert rules.event_problem(_ev(1, "scan", 10), T0, P) is not None
    assert rules.event_problem(_ev(1, "temperature", 0), T0, P) is not None
    assert rules.event_problem(_ev(1, "position", 0, lat=1.0), T0, P) is not None


def test_performance_rates_name_their_orders():
    now = T0 + timedelta(days=3)
    orders = [rules.OrderRecord(1, "fresh", T0, T0 + timedelta(hours=48), T0 + timedelta(hours=1), "shipped", False),
              rules.OrderRecord(2, "fresh", T0, T0 + timedelta(hours=48), T0 + timedelta(hours=50), "shipped", False),
              rules.OrderRecord(3, "fresh", T0, T0 + timedelta(hours=48), None, "cancelled", False)]
    shipments = [rules.ShipmentRecord(1, "fresh", T0, T0 + timedelta(hours=24), T0 + timedelta(hours=2), False),
                 rules.ShipmentRecord(2, "fresh", T0, T0 + timedelta(hours=24), None, False)]
    rates = {r["metric"]: r for r in rules.performance(orders, shipments, now, 7, P)}
    assert rates["late_shipment_rate"]["order_ids"] == [2, 3]
    assert rates["pre_fulfilment_cancel_rate"]["rate_bps"] == 3333
    assert rates["valid_tracking_rate"]["rate_bps"] == 5000 and not rates["valid_tracking_rate"]["ok"]
    assert rates["order_defect_rate"]["order_ids"] == [3]
    counts = rules.RateCounts(orders=3, due=3, late=2, cancelled=1, defects=1, checked=2, invalid=1)
    assert [m for m, _ in rules.off_target(counts, P)] == ["late_shipment_rate", "pre_fulfilment_cancel_rate",
                                                           "valid_tracking_rate", "order_defect_rate"]


def test_one_event_id_with_two_contents_is_a_conflict_the_same_one_twice_is_not():
    at = datetime(2026, 11, 1, tzinfo=UTC)
    scan = rules.CarrierEvent("e1", "SB0000000001", rules.EventKind.SCAN, at)
    assert rules.conflicting_events([scan, scan]) == []
    assert len(rules.conflicting_events([scan, rules.CarrierEvent("e1", "SB0000000001", rules.EventKind.DELIVERED,
                                                                  at)])) == 1
    assert rules.conflicting_events([scan, rules.CarrierEvent("e1", "SB0000000002", rules.EventKind.DELIVERED,
                                                              at)]) == []
