"""Capacity rules without a database: bottlenecks, factors, disruptions, safe sales, over-sale picks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuangou.capacity import rules
from tuangou.capacity.rules import Declaration, Disruption, Machine, PaidOrder


def test_milk_tea_shop_declared_100_an_hour_but_its_sealer_does_40_so_the_cap_is_400():
    # given a milk-tea shop open 10 hours that declares 100 cups an hour
    declared = Declaration(opens="10:00", closes="20:00", machines=(Machine("sealing machine", 100),))
    assert rules.bottleneck(declared).cap == 1000
    # when the inspection finds one sealing machine doing 40 cups an hour
    found = declared.with_findings({"machines": [{"name": "sealing machine", "per_hour": 40}]})
    # then the approved cap is 400, limited by the sealer
    neck = rules.bottleneck(found)
    assert (neck.cap, neck.resource) == (400, "machine:sealing machine")


def test_noodle_shop_with_two_pots_cannot_honour_120_bowls():
    # given two pots of 5 bowls an hour each, 10 hours, and plenty of staff and noodles
    shop = Declaration(opens="10:00", closes="20:00", staff=4, per_staff_per_hour=10,
                       ingredient_units_per_day=300, machines=(Machine("pot", 5, count=2),))
    neck = rules.bottleneck(shop)
    # then the pots allow 100 bowls, fewer than the 120 on offer
    assert (neck.cap, neck.resource) == (100, "machine:pot")
    assert rules.sellable_cap(120, neck.cap) == 100


def test_the_tightest_resource_wins_and_consumption_divides_it():
    shop = Declaration(opens="09:00", closes="21:00", staff=2, per_staff_per_hour=10, ingredient_units_per_day=150,
                       max_reception_per_day=200)
    assert rules.bottleneck(shop).per_resource == {"staff": 240, "ingredients": 150, "reception": 200}
    assert rules.bottleneck(shop).resource == "ingredients"
    # a set for two uses two portions of ingredients and one seat; staff are not involved
    set_for_two = rules.bottleneck(shop, {"ingredients": 2, "staff": 0})
    assert (set_for_two.cap, set_for_two.resource) == (75, "ingredients")
    assert rules.bottleneck(Declaration()).cap is None


def test_findings_override_only_what_was_found():
    declared = Declaration(staff=3, per_staff_per_hour=10, machines=(Machine("oven", 20), Machine("mixer", 50)))
    found = declared.with_findings({"staff": 1, "machines": [{"name": "oven", "per_hour": 10}]})
    assert found.staff == 1 and found.per_staff_per_hour == 10
    assert found.machines == (Machine("oven", 10), Machine("mixer", 50))


def test_declaration_problems_are_reported():
    assert rules.declaration_problems(Declaration(opens="20:00", closes="10:00")) == ["closes must be after opens"]
    assert "staff and per_staff_per_hour go together" in rules.declaration_problems(Declaration(staff=2))
    assert rules.declaration_problems(Declaration(machines=(Machine("a", 1), Machine("a", 2))))
    with pytest.raises(ValueError):
        rules.parse_hhmm("25:00")


def test_weekend_factor_is_capped_by_the_policy_and_holidays_win():
    saturday, monday = date(2026, 11, 28), date(2026, 11, 23)
    factors = {5: 2.5, 6: 1.8}
    assert rules.day_factor(saturday, factors, {}, max_factor=2.0) == 2.0
    assert rules.day_factor(monday, factors, {}, max_factor=2.0) == 1.0
    assert rules.day_factor(monday, factors, {monday: 1.5}, max_factor=2.0) == 1.5
    assert rules.daily_cap(100, rules.day_factor(saturday, factors, {}, 2.0), []) == 200


def test_disruptions_cut_the_day_they_touch_in_store_local_time():
    # 15:00 in Shanghai on Monday 23 Nov, until the end of that local day
    start = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    chef_away = Disruption(start, datetime(2026, 11, 23, 16, 0, tzinfo=UTC), capacity_factor=0.5)
    assert rules.disruption_hits(chef_away, date(2026, 11, 23), "Asia/Shanghai")
    assert not rules.disruption_hits(chef_away, date(2026, 11, 24), "Asia/Shanghai")
    assert rules.disruption_hits(Disruption(start, None), date(2026, 12, 1), "Asia/Shanghai")
    # once ended, it no longer cuts what is left of its day
    assert not rules.disruption_hits(chef_away, date(2026, 11, 23), "Asia/Shanghai", now=chef_away.ends_at)
    assert rules.disruption_hits(chef_away, date(2026, 11, 23), "Asia/Shanghai", now=start)
    short = Disruption(start, None, max_units=30)
    assert rules.daily_cap(100, 1.0, [chef_away]) == 50
    assert rules.daily_cap(100, 2.0, [chef_away, short]) == 30
    assert rules.daily_cap(100, 1.0, [Disruption(start, None, capacity_factor=0)]) == 0


def test_safe_sales_is_reception_times_days_times_point_eight():
    assert rules.safe_sales(100, 5, 0.8) == 400
    assert rules.safe_sales(33, 3, 0.8) == 79
    with pytest.raises(ValueError):
        rules.safe_sales(-1, 3, 0.8)


def test_needs_audit_for_large_promotions_or_big_offers():
    assert rules.needs_audit(True, 100, 1, 2_000_000)
    assert rules.needs_audit(False, 1500, 2000, 2_000_000)
    assert not rules.needs_audit(False, 1500, 100, 2_000_000)


def test_red_line_is_crossed_once_per_line():
    # cap 50, warn at 10 left: the line is 40 units used
    assert rules.red_line_crossed(50, 38, 40, 10) == 40
    assert rules.red_line_crossed(50, 40, 41, 10) is None
    assert rules.red_line_crossed(50, 30, 39, 10) is None
    assert rules.red_line_crossed(50, 35, 50, 10) == 40
    # a small cap warns on the first unit
    assert rules.red_line_crossed(5, 0, 1, 10) == 1


def test_oversold_orders_are_picked_newest_first_by_default():
    t = datetime(2026, 11, 23, tzinfo=UTC)
    orders = [PaidOrder(1, 2, t), PaidOrder(2, 1, t + timedelta(minutes=1)), PaidOrder(3, 3, t + timedelta(minutes=2))]
    assert rules.pick_oversold(orders, 3) == [3]
    assert rules.pick_oversold(orders, 4) == [3, 2]
    assert rules.pick_oversold(orders, 2, rules.OversalePick.OLDEST_FIRST) == [1]
    assert rules.pick_oversold(orders, 0) == []


def test_sales_line_flags_red_past_the_threshold():
    assert rules.sales_line("Noodles", 100, 85, 0, 85) == ("[RED] Noodles: sold 85% (85 sold, 0 held), 15 left of 100",
                                                          True)
    assert rules.sales_line("Noodles", 100, 50, 4, 85)[1] is False


def test_policy_checks_and_merges():
    policy = rules.GovernancePolicy()
    assert (policy.warn_remaining, policy.red_flag_percent, policy.compensation_coupon_cents,
            policy.max_day_factor, policy.safe_sales_ratio, policy.suggestion_hour) == (10, 85, 500, 2.0, 0.8, 8)
    assert policy.merged({"warn_remaining": 5}).warn_remaining == 5
    assert policy.merged({"suggestion_hour": 24}).problems() == ["suggestion_hour must be in 0..23"]
    assert policy.merged({"max_day_factor": 2}).max_day_factor == 2.0
    for bad in ({"nope": 1}, {"warn_remaining": "ten"}, {"warn_remaining": 1.5}, {"oversale_pick": 3},
                {"suggestion_hour": True}):
        with pytest.raises(ValueError):
            policy.merged(bad)


events = st.lists(st.one_of(
    st.tuples(st.just("order"), st.integers(1, 5)),
    st.tuples(st.just("disrupt"), st.floats(0, 1)),
    st.tuples(st.just("limit"), st.integers(0, 60)),
    st.tuples(st.just("restore"), st.just(0)),
), max_size=60)


@given(base=st.integers(0, 80), factor=st.floats(0, 3), script=events)
def test_sold_never_exceeds_the_cap_whatever_orders_and_disruptions_come(base, factor, script):
    """A model of one day: orders take units only under the cap; each change of the cap is
    followed by moving out the picked over-sold orders; sold never stays above the cap."""
    start = datetime(2026, 11, 23, tzinfo=UTC)
    disruptions: list[Disruption] = []
    day_factor = rules.day_factor(date(2026, 11, 28), {5: factor}, {}, 2.0)
    cap = rules.daily_cap(base, day_factor, disruptions)
    held: list[PaidOrder] = []
    for i, (kind, value) in enumerate(script):
        now = start + timedelta(minutes=i)
        if kind == "order":
            if sum(o.quantity for o in held) + value <= cap:
                held.append(PaidOrder(i, int(value), now))
        else:
            if kind == "disrupt":
                disruptions.append(Disruption(now, None, capacity_factor=float(value)))
            elif kind == "limit":
                disruptions.append(Disruption(now, None, max_units=int(value)))
            else:
                disruptions.clear()
            cap = rules.daily_cap(base, day_factor, disruptions)
            over = sum(o.quantity for o in held) - cap
            moved = set(rules.pick_oversold(held, over))
            held = [o for o in held if o.id not in moved]
        assert sum(o.quantity for o in held) <= cap
        assert cap <= base * 2


@given(st.integers(0, 3 * 24 * 60), st.lists(st.integers(-600, 3000), max_size=4))
def test_next_refresh_is_the_next_midnight_or_an_earlier_end_of_a_running_disruption(minutes, ends):
    # given a moment and some disruptions ending around it
    now = datetime(2026, 11, 22, 16, 0, tzinfo=UTC) + timedelta(minutes=minutes)
    disruptions = [rules.Disruption(now - timedelta(hours=1), now + timedelta(minutes=e)) for e in ends]
    # when the next refresh is planned
    due = rules.next_refresh(now, "Asia/Shanghai", disruptions)
    # then it is after now and no later than the store's next midnight, and no running disruption ends before it
    assert now < due <= now + timedelta(days=1)
    midnight = datetime.combine(now.astimezone(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1), time(0),
                                ZoneInfo("Asia/Shanghai"))
    assert due <= midnight
    assert not any(now < d.ends_at < due for d in disruptions if d.ends_at is not None)
    assert due == midnight or any(d.ends_at == due for d in disruptions)


@given(st.integers(0, 500), st.integers(0, 1000), st.integers(0, 1000))
def test_verified_base_never_exceeds_the_declared_one_and_grows_with_what_was_served(base, planned, served):
    # given a declared base, the capacity planned on a failed day and what the store served that day
    verified = rules.verified_base(base, planned, served)
    # then the proven base is never above the declared one, and serving more never proves less
    assert 0 <= verified <= base
    assert rules.verified_base(base, planned, served + 1) >= verified
    # and serving all that was planned proves the declaration right
    assert rules.verified_base(base, planned, planned) == base


def test_a_cold_room_of_100_jin_bounds_the_goods_deals_and_says_nothing_about_vouchers():
    decl = Declaration(max_reception_per_day=40, storage_units=100)
    assert rules.storage_bottleneck(decl).cap == 100
    assert rules.storage_bottleneck(decl, {"storage": 2}).cap == 50  # a two-jin box
    assert rules.storage_bottleneck(decl, {"storage": 0}).cap is None
    assert rules.storage_bottleneck(Declaration()).cap is None
    assert rules.bottleneck(decl).cap == 40  # storage is no daily resource of a voucher
    assert rules.declaration_problems(Declaration(storage_units=-1)) == ["storage_units must be >= 0"]


def test_a_disrupted_evening_is_split_over_the_seatings_keeping_what_each_sold():
    offers = {"18:00": 10, "21:00": 10}
    assert rules.split_slots(None, offers, {}, {}) == offers
    assert rules.split_slots(25, offers, {}, {}) == offers
    assert rules.split_slots(10, offers, {}, {}) == {"18:00": 5, "21:00": 5}
    assert rules.split_slots(10, offers, {"18:00": 8}, {}) == {"18:00": 8, "21:00": 2}  # the rest by headroom
    # one room left, three sold: the day is over-sold, so some slot falls below what it sold
    caps = rules.split_slots(1, offers, {"18:00": 2, "21:00": 1}, {})
    assert sum(caps.values()) == 1 and caps["18:00"] <= 2 and caps["21:00"] <= 1
    # caps that already fit are kept
    assert rules.split_slots(10, offers, {"18:00": 1}, {}, {"18:00": 2, "21:00": 8}) == {"18:00": 2, "21:00": 8}


slot_counts = st.dictionaries(st.sampled_from(["11:00", "14:00", "18:00", "21:00"]),
                              st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)), min_size=1)


@given(slot_counts, st.integers(0, 150))
def test_slot_caps_add_up_to_the_days_capacity_and_only_an_oversold_day_cuts_below_sold(counts, capacity):
    offers = {s: o for s, (o, _, _) in counts.items()}
    sold = {s: min(o, x) for s, (o, x, _) in counts.items()}
    held = {s: min(o - sold[s], h) for s, (o, _, h) in counts.items()}
    caps = rules.split_slots(capacity, offers, sold, held)
    assert sum(caps.values()) == min(capacity, sum(offers.values()))
    assert all(0 <= caps[s] <= offers[s] for s in offers)
    if sum(sold.values()) <= capacity:
        assert all(caps[s] >= sold[s] for s in offers)  # the breaker trips only past the day's capacity
    if sum(sold.values()) + sum(held.values()) <= capacity:
        assert all(caps[s] >= sold[s] + held[s] for s in offers)
    assert rules.split_slots(capacity, offers, sold, held, caps) == caps  # a recompute moves nothing


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=1, max_value=20_000),
       st.integers(min_value=0, max_value=20_000))
def test_a_slow_days_shortfall_moves_down_at_least_one_unit_and_at_most_halfway(base, capacity, served):
    stepped = rules.stepped_down_base(base, capacity, served)
    scaled = rules.verified_base(base, capacity, served)
    assert 0 <= stepped < base  # a proven shortfall always costs at least one unit
    assert stepped >= min(scaled, base - 1)  # never below what the day's service shows
    assert stepped <= (base + scaled) // 2  # and never more than halfway there from one slow day
