"""A small demo data set: merchants, stores, deals, buyers and a few orders. Idempotent."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from tuangou.accounts import service as accounts
from tuangou.accounts.models import User
from tuangou.catalog import service as catalog
from tuangou.core.auth import Principal, Role
from tuangou.core.config import Settings
from tuangou.core.db import Database, UnitOfWork
from tuangou.core.registry import load_models
from tuangou.merchants import deposits, exam
from tuangou.orders import service as orders
from tuangou.orders import signals
from tuangou.orders.gateway import SandboxGateway

PASSWORD = "demo-pass-1"
SHOPS = [
    ("Lao Wang Noodles", "catering", "beef noodles for two", 3900, 5800, 120),
    ("Cha Ji Milk Tea", "beverage", "buy one get one: brown sugar boba", 1500, 3000, 400),
    ("Taro Cake House", "bakery", "¥9.9 taro mille-feuille", 990, 2800, 60),
]

DEMO_DEPOSIT_CENTS = 100_000  # each demo merchant pays 1,000 yuan into its deposit (the gateway is the sandbox)


def demo_secret(var: Path) -> str:
    """This installation's random signing key: made on first use, kept (owner-only) in var/secret_key."""
    path = var / "secret_key"
    if not path.exists():
        var.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def load_demo(settings: Settings, step: Callable[[int, int], None] | None = None) -> list[tuple[str, str, str]]:
    """`step(done, total)` follows the merchants being set up (a progress bar in the CLI)."""
    load_models()
    db = Database.from_settings(settings)
    try:
        return _load(db, step or (lambda _done, _total: None), settings.secret_key)
    finally:
        db.dispose()


def _load(db: Database, step: Callable[[int, int], None], key: str) -> list[tuple[str, str, str]]:
    made = [("ops", "ops@demo.tuangou", "platform operations")]
    uow = UnitOfWork(db)
    with uow:
        already = uow.session.scalar(select(User).where(User.email == "ops@demo.tuangou"))
    if already is None:
        ops = accounts.create_user(uow, None, "ops@demo.tuangou", PASSWORD, Role.OPS, "Demo Ops", reason="demo")
        ops_p = Principal(ops.id, Role.OPS)
        gateway = SandboxGateway()
        exam.ensure_default_bank(uow)  # the shipped compliance exam (it would also load on first use)
        buyers = [accounts.sign_up_buyer(uow, f"buyer{i}@demo.tuangou", PASSWORD, f"Buyer {i}") for i in (1, 2, 3)]
        now = uow.clock.now()
        for i, (shop, category, title, price, original, cap) in enumerate(SHOPS, start=1):
            merchant_id, owner = accounts.create_merchant(uow, ops_p, shop, f"merchant{i}@demo.tuangou", PASSWORD,
                                                          "demo")
            mp = Principal(owner.id, Role.MERCHANT, merchant_id)
            deposits.top_up(uow, mp, merchant_id, DEMO_DEPOSIT_CENTS, "demo-deposit", gateway)
            store = catalog.create_store(uow, mp, shop, category, "Asia/Shanghai", "Chaoyang, Beijing")
            deal = catalog.create_deal(uow, mp, store.id, title=title, kind="voucher", price_cents=price,
                                       original_price_cents=original, valid_from=now - timedelta(hours=1),
                                       valid_until=now + timedelta(days=30), per_buyer_limit=5, daily_cap=cap)
            catalog.publish_deal(uow, mp, deal.id)
            for b in buyers:
                bp = Principal(b.id, Role.BUYER)
                order, _ = orders.place_order(uow, bp, deal.id, 1, f"demo-{deal.id}-{b.id}")
                orders.pay_order(uow, bp, order.id, "demo", gateway)
            step(i, len(SHOPS))
        # one case in the ops review queue: the three demo buyers order the bakery deal from one tablet
        # (the third account on one device is held; ops may release it with one click)
        tablet = signals.signals(key, device="demo-family-tablet")
        for b in buyers:
            orders.place_order(uow, Principal(b.id, Role.BUYER), deal.id, 1, f"demo-tablet-{b.id}",
                               signals=tablet)
    made += [("merchant", f"merchant{i}@demo.tuangou", s[0]) for i, s in enumerate(SHOPS, start=1)]
    made += [("buyer", f"buyer{i}@demo.tuangou", "buyer") for i in (1, 2, 3)]
    return made
