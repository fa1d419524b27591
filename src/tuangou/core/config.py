"""Settings from the environment (`TUANGOU_*`), one object passed everywhere."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process settings. Business policies live in the database, not here."""

    model_config = SettingsConfigDict(env_prefix="TUANGOU_", env_file=None, extra="ignore")

    database_url: str = "sqlite:///./var/tuangou.db"
    secret_key: str = "dev-only-change-me"
    token_ttl_hours: int = 24 * 7
    reservation_ttl_minutes: int = 15
    default_timezone: str = "Asia/Shanghai"
    # SQLite synchronous mode: FULL survives power loss, NORMAL (WAL) only process crashes.
    sqlite_synchronous: str = "FULL"
    webhook_timeout_seconds: float = 5.0
    webhook_max_attempts: int = 12
    run_worker_in_process: bool = False
    worker_interval_seconds: float = 1.0
    platform_commission_bps: int = 500
    redis_url: str | None = None  # shared rate-limit counters across API processes
    rate_limit: str | None = None  # per caller, e.g. "20/second"; off when unset
    demo_mode: bool = False  # `tuangou demo`: the sign-in page shows the demo accounts
