"""Tier policy, state machine, coupon arithmetic, stacking and triage: pure rules, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuangou.disputes import rules
from tuangou.disputes.rules import CouponKind, DisputeAction, DisputeKind, DisputePolicy, DisputeStatus, Tier
from tuangou.orders import rules as order_rules

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
POLICY = DisputePolicy()


def test_seed_defaults_light_medium_severe():
    assert rules.remedy_for(Tier.LIGHT, POLICY) == rules.TierRemedy(refund=True, coupon_cents=1000)
    medium = rules.remedy_for(Tier.MEDIUM, POLICY)
    assert (medium.refund, medium.rebook_days, medium.side_item_cents > 0) == (False, 3, True)
    assert rules.remedy_for(Tier.SEVERE, POLICY) == rules.TierRemedy(refund=True, coupon_cents=3000)
    assert (POLICY.stack_coupon_cents, POLICY.stack_percent_bps) == (5000, 2000)


@given(st.integers(min_value=0, max_value=30))
def test_late_up_to_thirty_minutes_is_light(minutes):
    assert rules.classify(DisputeKind.LATE, minutes, POLICY) == Tier.LIGHT


@given(st.integers(min_value=31, max_value=10_000))
def test_later_than_the_light_limit_is_medium(minutes):
    assert rules.classify(DisputeKind.LATE, minutes, POLICY) == Tier.MEDIUM


def test_kinds_map_to_tiers_by_policy():
    assert rules.classify(DisputeKind.NOT_TODAY, None, POLICY) == Tier.MEDIUM
    assert rules.classify(DisputeKind.CANNOT_FULFIL, None, POLICY) == Tier.SEVERE
    assert rules.classify(DisputeKind.LATE, None, POLICY) == Tier.LIGHT
    strict = rules.policy_from_dict({"kind_tiers": {"quality_problem": "severe"}, "light_late_minutes": 10})
    assert rules.classify(DisputeKind.QUALITY, None, strict) == Tier.SEVERE
    assert rules.classify(DisputeKind.LATE, 20, strict) == Tier.MEDIUM


def test_policy_changes_merge_over_defaults_and_nonsense_is_refused():
    changed = rules.policy_from_dict({"tiers": {"severe": {"coupon_cents": 5000}}, "respond_within_minutes": 30})
    assert changed.tiers[Tier.SEVERE].coupon_cents == 5000 and changed.tiers[Tier.SEVERE].refund
    assert changed.tiers[Tier.LIGHT] == POLICY.tiers[Tier.LIGHT]
    assert rules.policy_from_dict(changed.to_dict()) == changed  # stored form round-trips
    for bad in ({"tiers": {"severe": {"coupon_cents": -1}}}, {"nonsense": 1}, {"stack_percent_bps": 20000},
                {"kind_tiers": {"cannot_fulfil": "apocalyptic"}}, {"respond_within_minutes": 0}):
        with pytest.raises(ValueError):
            rules.policy_from_dict(bad)


@pytest.mark.parametrize("action", list(DisputeAction))
@pytest.mark.parametrize("status", list(DisputeStatus))
def test_every_transition_is_explicit(status, action):
    target = rules.next_status(status, action)
    decided = status in (DisputeStatus.CONFIRMED, DisputeStatus.REJECTED, DisputeStatus.WITHDRAWN)
    repeated = (action, status) in ((DisputeAction.CONTEST, DisputeStatus.CONTESTED),
                                    (DisputeAction.ESCALATE, DisputeStatus.ESCALATED))
    # a decided dispute never moves again; contesting or escalating twice is refused; all else is allowed
    assert (target is None) == (decided or repeated)


def test_respond_by_follows_the_sla():
    assert rules.respond_by(NOW, POLICY) == NOW + timedelta(minutes=120)


def _terms(kind=CouponKind.AMOUNT, value=3000, threshold=0, cap=None, merchant=None, days=30):
    return rules.CouponTerms(kind, value, threshold, cap, NOW + timedelta(days=days), merchant)


@given(st.sampled_from(list(CouponKind)), st.integers(1, 10_000), st.integers(0, 1_000_000),
       st.one_of(st.none(), st.integers(0, 100_000)))
def test_a_discount_is_never_negative_nor_more_than_the_order(kind, value, order, cap):
    off = rules.coupon_discount(_terms(kind, value, cap=cap), order)
    assert 0 <= off <= order
    if cap is not None and kind == CouponKind.PERCENT:
        assert off <= cap


def test_percent_coupon_takes_its_share_rounded_half_up():
    assert rules.coupon_discount(_terms(CouponKind.PERCENT, 2000), 1005) == 201
    assert rules.coupon_discount(_terms(CouponKind.PERCENT, 2000, cap=100), 1005) == 100


def test_coupon_problems_threshold_merchant_expiry():
    assert rules.coupon_problem(_terms(threshold=5000), order_cents=4999, merchant_id=1, now=NOW)
    assert rules.coupon_problem(_terms(threshold=5000), order_cents=5000, merchant_id=1, now=NOW) is None
    assert rules.coupon_problem(_terms(merchant=2), order_cents=100, merchant_id=1, now=NOW)
    assert rules.coupon_problem(_terms(days=1), order_cents=100, merchant_id=1, now=NOW + timedelta(days=1))


@given(st.integers(0, 100_000), st.lists(st.integers(1, 5), min_size=1, max_size=6))
def test_partial_refund_shares_add_up_to_the_whole_discount(discount, parts):
    quantity = sum(parts)
    before, total = 0, 0
    for k in parts:
        share = order_rules.coupon_share(discount, quantity, before, k)
        assert share >= 0
        total += share
        before += k
    assert total == discount


def test_compensation_does_not_stack_except_confirmed_severe():
    assert rules.stacking_problem(Tier.SEVERE, DisputeStatus.CONFIRMED, POLICY) is None
    assert rules.stacking_problem(Tier.MEDIUM, DisputeStatus.CONFIRMED, POLICY)
    assert rules.stacking_problem(Tier.LIGHT, DisputeStatus.CONFIRMED, POLICY)
    assert rules.stacking_problem(Tier.SEVERE, DisputeStatus.OPEN, POLICY)
    lenient = rules.policy_from_dict({"stacking_tiers": ["medium", "severe"]})
    assert rules.stacking_problem(Tier.MEDIUM, DisputeStatus.CONFIRMED, lenient) is None


def test_stacked_package_replaces_the_default_coupon():
    unused = rules.stacked_package(POLICY, 3000, default_coupon_used=False)
    assert [(c.kind, c.value) for c in unused] == [(CouponKind.AMOUNT, 5000), (CouponKind.PERCENT, 2000)]
    used = rules.stacked_package(POLICY, 3000, default_coupon_used=True)
    assert [(c.kind, c.value) for c in used] == [(CouponKind.AMOUNT, 2000), (CouponKind.PERCENT, 2000)]


def _facts(text, photos=(), paid_ago=timedelta(days=1)):
    return rules.TicketFacts(text, 3000, 1, NOW - paid_ago, NOW, tuple(photos))


def test_triage_proposes_return_and_reship_for_damaged_goods_with_fresh_photos():
    photo = rules.Photo("box.jpg", NOW - timedelta(hours=2), 120_000)
    remedies = [p.remedy for p in rules.RuleTriage().propose(_facts("the strawberries arrived rotten", [photo]))]
    assert remedies[:2] == [rules.Remedy.RETURN, rules.Remedy.RESHIP]
    assert rules.Remedy.DISCOUNT in remedies


def test_triage_distrusts_photos_taken_before_payment_and_late_claims():
    old_photo = rules.Photo("old.jpg", NOW - timedelta(days=3))
    assert [p.remedy for p in rules.RuleTriage().propose(_facts("damaged", [old_photo]))] == [rules.Remedy.DISCOUNT]
    fresh = rules.Photo("new.jpg", NOW)
    late = rules.RuleTriage().propose(_facts("damaged", [fresh], paid_ago=timedelta(days=30)))
    assert rules.Remedy.RETURN not in [p.remedy for p in late]


def test_triage_reships_missing_units_and_discounts_minor_flaws():
    assert rules.RuleTriage().propose(_facts("one bag is missing"))[0].remedy == rules.Remedy.RESHIP
    minor = rules.RuleTriage().propose(_facts("a small scratch on the lid"))
    assert [(p.remedy, p.amount_cents) for p in minor] == [(rules.Remedy.DISCOUNT, 900)]


def test_policy_values_must_have_the_right_type_and_size():
    for bad in ({"tiers": {"light": {"refund": "yes"}}}, {"tiers": {"light": {"coupon_cents": "10"}}},
                {"tiers": {"light": {"coupon_cents": 10**12}}}, {"coupon_valid_days": 10**9},
                {"light_late_minutes": True}, {"tiers": "light"}):
        with pytest.raises((ValueError, TypeError)):
            rules.policy_from_dict(bad)


def test_the_medium_tier_compensates_in_kind_with_a_free_side_dish():
    medium = rules.remedy_for(Tier.MEDIUM, POLICY)
    assert (medium.side_item, rules.gives_item(medium)) == ("free side dish", True)
    assert not rules.gives_item(rules.remedy_for(Tier.LIGHT, POLICY))
    # an old stored policy without item names keeps the seed's name; a cost of 0 means no item at all
    old = rules.policy_from_dict({"tiers": {"medium": {"side_item_cents": 1500}, "light": {"side_item_cents": 0}}})
    assert old.tiers[Tier.MEDIUM].side_item == "free side dish"
    assert not rules.gives_item(rules.policy_from_dict({"tiers": {"medium": {"side_item_cents": 0}}}).tiers[Tier.MEDIUM])
    with pytest.raises(ValueError):
        rules.policy_from_dict({"tiers": {"severe": {"side_item": 7}}})


def test_an_item_voucher_takes_nothing_off_an_order():
    terms = rules.CouponTerms(CouponKind.ITEM, 1500, 0, None, NOW + timedelta(days=1), 1)
    assert rules.coupon_problem(terms, order_cents=5000, merchant_id=1, now=NOW) is not None


@given(st.sampled_from([s.value for s in rules.CouponStatus]), st.integers(1, 3), st.integers(1, 3),
       st.integers(-3, 3))
def test_item_voucher_refusals_name_the_first_reason_and_only_a_fresh_own_voucher_is_served(status, owner, me,
                                                                                             days_left):
    valid_until = NOW + timedelta(days=days_left)
    refusal = rules.item_voucher_refusal(status=status, voucher_merchant_id=owner, merchant_id=me,
                                         valid_until=valid_until, now=NOW)
    servable = owner == me and status == rules.CouponStatus.AVAILABLE and valid_until > NOW
    assert (refusal is None) == servable
    if owner != me:
        assert refusal == rules.ItemVoucherRefusal.WRONG_MERCHANT
    elif status == rules.CouponStatus.USED:
        assert refusal == rules.ItemVoucherRefusal.USED
