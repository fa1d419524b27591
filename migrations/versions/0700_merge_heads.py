"""Join the capability branches (campaigns and shared policies) into one head.

Revision ID: 0700
Revises: 0300, 0600
"""
from __future__ import annotations

revision = "0700"
down_revision = ("0300", "0600")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
