"""Risk's pure rules: windows, the decision and its words, the policy, abuse, signals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuangou.orders import signals
from tuangou.risk import rules

POLICY = rules.RiskPolicy()


def count(scope="device", n=1, prev_n=0, units=1, prev_units=0, accounts=1, prev_accounts=0):
    return rules.Count(scope, n, prev_n, units, prev_units, accounts, prev_accounts)


def test_a_count_under_every_line_passes_without_hits():
    assert rules.decide([count("buyer"), count("device")], 0.5, None, POLICY) == rules.Decision(rules.Action.PASS, [])


def test_the_hold_line_is_crossed_by_the_order_after_it_and_the_words_say_what_was_seen():
    decision = rules.decide([count("device", n=7, accounts=3)], 0.0, None,
                            rules.policy_from_dict({"hold_accounts": {"device": 5}, "hold_orders": {"device": 6}}))
    assert decision.action == rules.Action.HOLD
    assert [h.words for h in decision.hits] == [
        "7 orders from 3 accounts on one device in 10 minutes (more than 6 is held)"]


def test_a_reject_hit_wins_over_holds():
    decision = rules.decide([count("buyer", n=61), count("device", n=21)], 0.0, "device", POLICY)
    assert decision.action == rules.Action.REJECT
    assert {h.rule for h in decision.hits} == {"velocity.buyer", "velocity.device", "linked_merchant"}
    assert rules.refusal_words(decision) == "61 orders on this account in 10 minutes (more than 60 is refused)"


@given(st.integers(0, 1000), st.integers(0, 1000), st.floats(0, 0.999))
def test_the_sliding_count_lies_between_the_current_window_and_both_windows(n, prev, into):
    orders, _, _ = count(n=n, prev_n=prev).sliding(into)
    assert n <= orders <= n + prev


@given(st.floats(0, 4e9), st.integers(1, 1440))
def test_a_moment_falls_in_exactly_one_window(epoch, minutes):
    win, into = rules.window_of(epoch, minutes)
    assert 0 <= into < 1
    assert win * minutes * 60 <= epoch < (win + 1) * minutes * 60


def test_the_policy_refuses_unknown_fields_scopes_and_actions():
    with pytest.raises(ValueError, match="unknown risk policy field"):
        rules.policy_from_dict({"nope": 1})
    with pytest.raises(ValueError, match="must map scopes"):
        rules.policy_from_dict({"hold_orders": {"planet": 3}})
    with pytest.raises(ValueError, match="linked_merchant"):
        rules.policy_from_dict({"linked_merchant": "shout"})
    assert rules.policy_from_dict({"hold_orders": {"device": 3}}).hold_orders["buyer"] == 20


def test_abusers_are_far_above_the_norm_not_merely_unlucky():
    records = [rules.BuyerRecord(i, 10, 0, 0) for i in range(20)] + [
        rules.BuyerRecord(100, 4, 4, 12_000), rules.BuyerRecord(101, 40, 3, 900)]
    found = rules.abusers(records, POLICY)
    assert [b for b, _ in found] == [100]
    assert found[0][1].startswith("4 disputes on 4 orders in 90 days (100% against a norm of 2.9%)")


def test_false_positive_rates_per_rule():
    stats = rules.false_positive_rates([(["shared.device"], "false_positive"), (["shared.device", "velocity.ip"],
                                                                                 "brushing")])
    assert stats["shared.device"] == {"decided": 2, "false_positives": 1, "false_positive_rate": 0.5}
    assert stats["velocity.ip"]["false_positive_rate"] == 0.0


def test_signals_match_however_the_buyer_wrote_them_and_keep_no_raw_value():
    a = signals.signals("k", phone="+86 138-0013-8000", address="Room 5, 88 Nanjing Rd", device=" Phone-A ")
    b = signals.signals("k", phone="13800138000", address="ROOM 5，88 NANJING RD.", device="phone-a")
    assert a == b
    assert "13800138000" not in str(a.columns())
    assert signals.signals("other key", phone="13800138000").phone != a.phone


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.9", "::1", "testclient", ""])
def test_addresses_that_say_nothing_about_the_buyer_are_not_signals(address):
    assert signals.signals("k", ip=address).ip is None


def test_a_public_address_is_a_signal():
    assert signals.signals("k", ip="114.114.114.114").ip is not None
