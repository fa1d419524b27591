"""Pure account rules."""

from __future__ import annotations

import re
from enum import StrEnum

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


class MerchantStatus(StrEnum):
    ACTIVE = "active"  # may sell
    SUSPENDED = "suspended"  # may not publish or sell until lifted
    REMOVED = "removed"  # cleared from the platform for good


def check_credentials(email: str, password: str) -> list[str]:
    """Problems with a sign-up; empty when fine."""
    problems = []
    if not EMAIL.match(email):
        problems.append("email is not a valid address")
    if len(password) < MIN_PASSWORD:
        problems.append(f"password needs at least {MIN_PASSWORD} characters")
    return problems
