"""Logistics: an index for parcels scanned but not yet checked, so the first-scan check reads only them
instead of every unchecked open parcel (the tick over 100,000 open shipments).

Revision ID: 0840
Revises: 0800
"""
from __future__ import annotations

from alembic import op

revision = "0840"
down_revision = "0800"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_logistics_shipments_scanned", "logistics_shipments", ["scan_checked", "first_scan_at"])


def downgrade() -> None:
    op.drop_index("ix_logistics_shipments_scanned", table_name="logistics_shipments")
