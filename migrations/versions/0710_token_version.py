"""Users carry a token version: bumping it (deactivation, password change, log out everywhere) revokes tokens.

Revision ID: 0710
Revises: 0700
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0710"
down_revision = "0700"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_version")
