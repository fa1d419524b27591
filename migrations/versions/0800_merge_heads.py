"""Join the branches of the second landing (order core, consoles, and the rest) into one head.

Revision ID: 0800
Revises: 0710, 0720, 0730, 0740, 0760
"""
from __future__ import annotations

revision = "0800"
down_revision = ("0710", "0720", "0730", "0740", "0760")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
