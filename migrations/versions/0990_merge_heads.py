"""Join the branches of the fourth landing (re-dating, accountability, campaign governance, compensation in
kind, governed slots and goods) into one head.

Revision ID: 0990
Revises: 0910, 0920, 0930, 0960
"""
from __future__ import annotations

revision = "0990"
down_revision = ("0910", "0920", "0930", "0960")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
