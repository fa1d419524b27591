"""Each user's own console language (zh_CN or en); empty: follow the browser's Accept-Language.

Revision ID: 0740
Revises: 0700
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0740"
down_revision = "0700"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locale")
