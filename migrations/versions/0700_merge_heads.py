"""Join the capability branches (capacity, disputes, campaigns, merchants) into one head.

Revision ID: 0700
Revises: 0100, 0200, 0300, 0400
"""
from __future__ import annotations

revision = "0700"
down_revision = ("0100", "0200", "0300", "0400")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
