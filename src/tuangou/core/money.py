"""Money is integer cents (分). Never floats."""

from __future__ import annotations


def yuan(cents: int) -> str:
    """Human form: 1234 -> '¥12.34'."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}¥{cents // 100}.{cents % 100:02d}"


def percent_of(cents: int, basis_points: int) -> int:
    """`basis_points`/10000 of `cents`, rounded half up, in cents."""
    return (cents * basis_points + 5000) // 10000
