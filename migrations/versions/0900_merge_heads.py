"""Join the branches of the third landing (risk, orders announcing their events, and the rest) into one head.

Revision ID: 0900
Revises: 0810, 0830, 0840, 0850
"""
from __future__ import annotations

revision = "0900"
down_revision = ("0810", "0830", "0840", "0850")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
