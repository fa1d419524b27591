"""Campaign rules without a database: cut-offs, cold chain, join refusals, pools, purchase lists, tiers and
calling a group off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tuangou.campaigns import rules
from tuangou.orders import rules as order_rules

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_fresh_cut_off_is_delivery_minus_logistics_preparation():
    delivery = T0 + timedelta(days=2)
    assert rules.order_cutoff(delivery, 12) == delivery - timedelta(hours=12)
    assert rules.order_cutoff(delivery, rules.CampaignPolicy().logistics_prep_hours) == T0 + timedelta(hours=36)


def test_join_is_refused_from_the_cut_off_on_even_before_the_deadline():
    deadline, cutoff = T0 + timedelta(hours=24), T0 + timedelta(hours=18)
    args = ("collecting", deadline, cutoff, 3, 10, True, False)
    assert rules.join_refusal(args[0], cutoff - timedelta(seconds=1), *args[1:]) is None
    assert rules.join_refusal(args[0], cutoff, *args[1:])[0] == "past_cutoff"


@given(st.integers(0, 30), st.integers(1, 30), st.sampled_from(list(rules.CampaignStatus)), st.booleans(),
       st.booleans())
def test_join_refusal_matches_status_capacity_and_entry(joined, max_size, status, close_on_threshold, closed):
    why = rules.join_refusal(status, T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), joined, max_size,
                             close_on_threshold, closed)
    joinable = status in rules.JOINABLE or (status == "formed" and not close_on_threshold)
    assert (why is None) == (joinable and not closed and joined < max_size)
    if why is None:
        return
    if not joinable or closed:
        assert why[0] == "campaign_closed"
    else:
        assert why[0] == "group_full"


def test_cold_chain_must_be_booked_48_hours_before_delivery_by_default():
    delivery = T0 + timedelta(hours=100)
    lead = rules.CampaignPolicy().cold_chain_lead_hours
    assert lead == 48
    assert not rules.cold_chain_alert_due(delivery - timedelta(hours=49), delivery, True, False, lead)
    assert rules.cold_chain_alert_due(delivery - timedelta(hours=48), delivery, True, False, lead)
    assert not rules.cold_chain_alert_due(delivery - timedelta(hours=10), delivery, True, True, lead)
    assert not rules.cold_chain_alert_due(delivery - timedelta(hours=10), delivery, False, False, lead)


@given(st.integers(1, 10_000), st.data())
def test_pool_level_only_rises_as_stock_is_drawn(capacity, data):
    safe = data.draw(st.integers(0, capacity))
    levels = [rules.pool_level(capacity, used, safe, (30, 10)) for used in range(capacity + 1)]
    assert levels == sorted(levels)
    assert levels[-1] == 3 and (levels[0] == 0) == (safe < capacity)


def test_pool_water_levels_default_to_30_and_10_percent():
    assert [rules.pool_level(100, used, 0, (30, 10)) for used in (69, 70, 89, 90, 100)] == [0, 1, 1, 2, 3]


@given(st.lists(st.tuples(st.sampled_from(["apples", "pears"]), st.sampled_from(["A", "B"]), st.integers(1, 5))))
def test_purchase_lines_keep_every_unit_and_participant(members):
    lines = rules.purchase_lines(members)
    assert sum(line["quantity"] for line in lines) == sum(q for _, _, q in members)
    assert sum(line["participants"] for line in lines) == len(members)
    assert len({(line["product"], line["pickup_point"]) for line in lines}) == len(lines)


def test_each_stage_has_an_owner_and_follows_the_previous_one():
    assert rules.transition_problem("formed", "procuring", "supplier") is None
    assert rules.transition_problem("formed", "procuring", "leader")[0] == "forbidden"
    assert rules.transition_problem("formed", "shipping", "merchant")[0] == "invalid_transition"
    assert rules.transition_problem("shipping", "delivered", "leader") is None
    assert rules.transition_problem("collecting", "failed", "ops")[0] == "invalid_stage"
    assert rules.transition_problem("delivered", "closed", "ops") is None


def test_countdown_counts_down_to_the_earlier_of_deadline_and_cut_off():
    c = rules.countdown(T0, T0 + timedelta(hours=24), T0 + timedelta(hours=2), 7, 4, 5, 10)
    assert c == {"deadline": (T0 + timedelta(hours=24)).isoformat(), "seconds_left": 7200, "participants": 4,
                 "joined": 7, "still_needed": 1, "spots_left": 3}


def test_campaign_terms_problems():
    ok = rules.campaign_terms_problems(3, 5, T0, T0 + timedelta(hours=1), T0 + timedelta(hours=20),
                                       T0 + timedelta(hours=8))
    assert ok == []
    bad = rules.campaign_terms_problems(0, 0, T0, T0, T0, T0)
    assert len(bad) == 4


def test_price_tiers_lower_the_price_as_the_group_grows():
    tiers = [(5, 900), (10, 800)]
    assert [rules.tier_price(tiers, n, 1000) for n in (0, 5, 9, 10, 30)] == [1000, 900, 900, 800, 800]
    assert rules.tiers_problems([(0, 900), (3, 1200)], 1000, 5) != []


def test_policy_round_trips_and_validates():
    p = rules.CampaignPolicy.from_dict({"pool_warn_percents": [10, 40], "stage_sla_hours": {"ship": 6}})
    assert p.pool_warn_percents == (40, 10) and p.stage_sla_hours["ship"] == 6
    assert rules.CampaignPolicy.from_dict(p.as_dict()) == p
    assert rules.policy_problems(rules.CampaignPolicy(pool_warn_percents=(120,))) != []
    assert rules.stage_due(T0, "formed", p) == T0 + timedelta(hours=24)
    assert rules.stage_due(T0, "closed", p) is None


def test_procurement_rank_orders_by_cut_off_first():
    a = rules.procurement_rank(T0 + timedelta(hours=5), T0 + timedelta(hours=1), 2)
    b = rules.procurement_rank(T0 + timedelta(hours=3), T0 + timedelta(hours=9), 1)
    assert sorted([a, b]) == [b, a]


@given(st.lists(st.integers(1, 10**6), max_size=20), st.integers(1, 10**6))
def test_repricing_only_ever_gives_money_back_and_is_what_each_voucher_paid_above(prices, new_price):
    owed = order_rules.repricing(prices, new_price)
    assert owed >= 0
    assert owed == sum(p - new_price for p in prices if p > new_price)
    assert order_rules.repricing([min(p, new_price) for p in prices], new_price) == 0  # a second pass owes nothing


@given(st.sampled_from(list(rules.CampaignStatus)), st.sampled_from(["merchant", "supplier", "ops", "leader", "buyer"]),
       st.sampled_from(["", "  ", "the harvest failed"]))
def test_only_owners_call_off_a_formed_undelivered_group_with_a_reason(status, role, reason):
    problem = rules.cancel_problem(status, role, reason)
    allowed = role in ("merchant", "supplier", "ops") and reason.strip() and status in rules.CANCELLABLE
    assert (problem is None) == bool(allowed)
    if role in ("leader", "buyer"):
        assert problem is not None and problem[0] == "cancel_not_allowed"


def test_the_responsible_party_is_who_calls_off_or_whom_ops_name():
    assert rules.responsible_party("supplier", None, True) == (rules.Party.SUPPLIER, "")
    assert rules.responsible_party("merchant", None, False) == (rules.Party.MERCHANT, "")
    assert rules.responsible_party("merchant", "supplier", True)[0] is None  # no blaming on another's account
    assert rules.responsible_party("ops", None, True)[0] is None
    assert rules.responsible_party("ops", "supplier", False)[0] is None  # no supplier to blame
    assert rules.responsible_party("ops", "merchant", True) == (rules.Party.MERCHANT, "")


def test_cold_chain_goods_ship_only_with_booked_transport():
    assert rules.shipping_problem(True, False) == ("cold_chain_unbooked", "book the cold-chain transport before shipping")
    assert rules.shipping_problem(True, True) is None and rules.shipping_problem(False, False) is None
