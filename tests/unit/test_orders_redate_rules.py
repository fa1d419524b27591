"""The re-dating rule: what may move, where to, and the stable code of every refusal."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tuangou.orders import rules

TODAY = date(2026, 11, 23)


def _case(**over):
    base = {"order_status": "paid", "issued": 2, "redeemed": 0, "from_date": TODAY + timedelta(days=3),
            "from_slot": None, "to_date": TODAY + timedelta(days=1), "to_slot": None, "today": TODAY,
            "window_first": TODAY, "window_last": TODAY + timedelta(days=7), "slots": frozenset()}
    return rules.RedateCase(**{**base, **over})


def test_a_paid_booking_moves_to_another_date_inside_the_window():
    assert rules.redate_problem(_case()) is None


def test_each_refusal_has_its_code():
    def code(**over):
        return rules.redate_problem(_case(**over)).code  # type: ignore[union-attr]

    assert code(redeemed=1) == "voucher_already_redeemed"
    assert code(issued=0) == "not_redatable"
    assert code(order_status="refunded") == "not_redatable"
    assert code(from_date=None) == "not_redatable"
    assert code(to_date=TODAY + timedelta(days=3)) == "same_date"
    assert code(to_date=TODAY + timedelta(days=8)) == "outside_window"
    assert code(to_date=TODAY - timedelta(days=1), window_first=TODAY - timedelta(days=5)) == "outside_window"
    assert code(to_slot="evening") == "invalid_slot"
    assert code(slots=frozenset({"lunch"}), from_slot="lunch", to_slot="dinner") == "invalid_slot"
    assert rules.redate_problem(_case(slots=frozenset({"lunch", "dinner"}), from_slot="lunch",
                                      to_date=TODAY + timedelta(days=3), to_slot="dinner")) is None


def test_the_policy_window_starts_today_and_stops_at_the_deal_validity():
    assert rules.redate_window(TODAY, 7, TODAY + timedelta(days=30)) == (TODAY, TODAY + timedelta(days=7))
    assert rules.redate_window(TODAY, 7, TODAY + timedelta(days=2)) == (TODAY, TODAY + timedelta(days=2))


@given(st.integers(-10, 20), st.integers(-10, 20), st.integers(0, 10), st.integers(0, 15), st.integers(0, 3),
       st.integers(0, 3), st.sampled_from(["paid", "completed", "refunded", "reserved"]))
def test_an_accepted_redating_is_always_to_another_date_inside_the_window_and_never_to_the_past(
        from_offset, to_offset, first_offset, span, issued, redeemed, status):
    case = _case(from_date=TODAY + timedelta(days=from_offset), to_date=TODAY + timedelta(days=to_offset),
                 window_first=TODAY + timedelta(days=first_offset - 5),
                 window_last=TODAY + timedelta(days=first_offset - 5 + span), issued=issued, redeemed=redeemed,
                 order_status=status)
    problem = rules.redate_problem(case)
    if problem is None:
        assert case.to_date != case.from_date and case.to_date >= TODAY
        assert case.window_first <= case.to_date <= case.window_last
        assert case.issued > 0 and case.redeemed == 0 and status == "paid"
    else:
        assert problem.status in (409, 422) and problem.code
