"""Pure rules of the order row's own outbox (orders/announce.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tuangou.orders import rules


@given(st.sampled_from(list(rules.Announced)), st.sampled_from(list(rules.OrderStatus)), st.booleans())
def test_an_order_announces_placed_once_and_paid_once_whatever_it_went_through(announced, status, paid):
    # given an order row at some point of its life; when the announcer looks at it
    events, after = rules.announcements(announced, status, paid)
    # then it owes OrderPlaced only if never announced, OrderPaid only if paid, and moves forward
    assert ("OrderPlaced" in events) == (announced == rules.Announced.NOTHING)
    assert ("OrderPaid" in events) == (paid and announced != rules.Announced.ALL)
    assert after >= announced
    assert after == rules.Announced.ALL or (status in rules.MAY_BE_PAID and not paid)
