"""Backup -> restore round trip on both databases: same rows in every table, same ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Stage, _fresh_postgres
from tuangou.core import backup


def _restore_target(kind: str, tmp_path: Path):
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/restored.db", lambda: None
    return _fresh_postgres()


def test_backup_restores_every_row_and_the_ledger(any_stage: Stage, tmp_path: Path) -> None:
    # given a database with paid orders, a refund and so ledger postings
    _, m = any_stage.merchant()
    deal = any_stage.deal(m, any_stage.store(m))
    buyer = any_stage.buyer()
    order = any_stage.paid_order(buyer, deal, 2)
    r = any_stage.client.post(f"/api/v1/orders/{order['id']}/refund", headers=buyer, json={"reason": "changed"})
    assert r.status_code == 200, r.text
    url = any_stage.db.url
    before = backup.census(url)
    assert before.tables["orders"] == 1 and before.ledger_volume_cents > 0 and before.ledger_sum_cents == 0

    # when it is backed up while the app is live, and restored into an empty database
    dest = tmp_path / ("b.sqlite" if any_stage.db.dialect == "sqlite" else "b.dump")
    steps: list[tuple[int, int]] = []
    made = backup.backup(url, dest, lambda done, total: steps.append((done, total)))
    target, drop = _restore_target(any_stage.db.dialect, tmp_path)
    try:
        after = backup.restore(target, dest)
    finally:
        drop()

    # then the checksum was written and every table and the ledger came back the same
    assert made.census == before and after == before
    assert (tmp_path / f"{dest.name}.sha256").read_text().split()[0] == made.sha256
    assert steps and steps[-1][0] == steps[-1][1]


def test_a_damaged_backup_is_refused_before_anything_changes(db, tmp_path: Path) -> None:
    dest = tmp_path / "b.sqlite"
    backup.backup(db.url, dest)
    with dest.open("r+b") as f:
        f.seek(200)
        f.write(b"\x00garbage")
    target = tmp_path / "untouched.db"
    with pytest.raises(backup.BackupError, match="checksum mismatch"):
        backup.restore(f"sqlite:///{target}", dest)
    assert not target.exists()
