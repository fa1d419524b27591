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


def check_password(password: str) -> list[str]:
    """Problems with a new password; empty when fine."""
    if len(password) < MIN_PASSWORD:
        return [f"password needs at least {MIN_PASSWORD} characters"]
    if "\x00" in password:
        return ["password may not contain NUL"]
    return []


def check_credentials(email: str, password: str) -> list[str]:
    """Problems with a sign-up; empty when fine."""
    problems = []
    if not EMAIL.match(email) or "\x00" in email:
        problems.append("email is not a valid address")
    return problems + check_password(password)
