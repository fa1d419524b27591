"""Settings from the environment (`TUANGOU_*`), one object passed everywhere."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse as parse_rate
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tuangou.core.auth import DEV_SECRET, MIN_SECRET_CHARS, Keyring

# TUANGOU_* variables read outside Settings (CLI options, tests, benchmarks): known, so not refused
OTHER_VARIABLES = frozenset({"TUANGOU_PORT", "TUANGOU_DB_POOL_SIZE", "TUANGOU_TEST_POSTGRES_URL",
                             "TUANGOU_TEST_REDIS_URL", "TUANGOU_BENCH_POSTGRES_URL", "TUANGOU_BENCH_RESERVE"})


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


class Settings(BaseSettings):
    """Process settings. Business policies live in the database, not here."""

    model_config = SettingsConfigDict(env_prefix="TUANGOU_", env_file=None, extra="ignore")

    database_url: str = "sqlite:///./var/tuangou.db"
    # Signs tokens. `tuangou serve` and `tuangou worker` refuse to start with the default or a short one.
    secret_key: str = DEV_SECRET
    # Comma-separated keys that still verify tokens signed before a rotation (never sign).
    previous_secret_keys: str = ""
    token_ttl_hours: Annotated[int, Field(ge=1)] = 24 * 7
    # How long a process trusts its cached copy of a user's token version / active flag (another process's
    # deactivation or "log out everywhere" takes effect within this many seconds; this process's at once).
    token_cache_seconds: Annotated[float, Field(ge=0)] = 5.0
    reservation_ttl_minutes: Annotated[int, Field(ge=1)] = 15
    default_timezone: str = "Asia/Shanghai"
    # SQLite synchronous mode: FULL survives power loss, NORMAL (WAL) only process crashes.
    sqlite_synchronous: str = "FULL"
    webhook_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    webhook_max_attempts: Annotated[int, Field(ge=1)] = 12
    # Comma-separated hosts or networks (CIDR) webhooks may reach although private or plain http (on-premise).
    webhook_allow_list: str = ""
    run_worker_in_process: bool = False
    worker_interval_seconds: Annotated[float, Field(gt=0)] = 1.0
    platform_commission_bps: Annotated[int, Field(ge=0, le=10_000)] = 500
    redis_url: str | None = None  # shared rate-limit and risk window counters across API processes
    risk_checks: bool = True  # risk checks on the order path (off only to measure what they cost)
    rate_limit: str | None = None  # per caller, e.g. "20/second"; off when unset
    demo_mode: bool = False  # `tuangou demo`: the sign-in page shows the demo accounts
    log_format: str = "json"  # json (one object per line, with the request id) or text
    access_log: bool = True  # one line per HTTP request
    expect_worker: bool = True
    # phone channels; unset: a sandbox keeps the messages (demo). SMS goes through an HTTP gateway.
    sms_gateway_url: str | None = None
    wechat_template_url: str | None = None  # e.g. …/cgi-bin/message/template/send?access_token=…
    wechat_template_id: str = ""  # /readyz fails when no worker has beaten its heart within a minute

    # Per client address on sign-up and log-in, on top of `rate_limit` (applies when rate_limit is set).
    auth_rate_limit: str = "10/minute"
    # Failed log-ins per account and per address before the exponential lockout starts.
    lockout_after_failures: Annotated[int, Field(ge=1)] = 5
    lockout_base_seconds: Annotated[int, Field(ge=1)] = 30
    lockout_max_seconds: Annotated[int, Field(ge=1)] = 3600
    # Comma-separated proxy addresses/networks whose X-Forwarded-For is believed (off when empty).
    trusted_proxies: str = ""
    max_body_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024  # a JSON or form request
    max_upload_bytes: Annotated[int, Field(ge=1)] = 20 * 1024 * 1024  # a whole multipart request
    max_file_bytes: Annotated[int, Field(ge=1)] = 5 * 1024 * 1024  # one uploaded file

    def keyring(self) -> Keyring:
        return Keyring(self.secret_key, _split(self.previous_secret_keys))

    def trusted_proxy_list(self) -> tuple[str, ...]:
        return _split(self.trusted_proxies)

    def webhook_allowed(self) -> tuple[str, ...]:
        return _split(self.webhook_allow_list)

    def secret_problem(self) -> str | None:
        """One line saying why this secret must not run in production, or None."""
        if self.secret_key == DEV_SECRET or len(self.secret_key) < MIN_SECRET_CHARS:
            return (f"TUANGOU_SECRET_KEY is unset or weak: set it to at least {MIN_SECRET_CHARS} random characters "
                    "(python -c 'import secrets; print(secrets.token_urlsafe(48))')")
        return None

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from exc
        return value

    @field_validator("sqlite_synchronous")
    @classmethod
    def _sync_mode(cls, value: str) -> str:
        if value.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError("must be OFF, NORMAL, FULL or EXTRA")
        return value.upper()

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgres")):  # sqlite:///…, postgresql(+psycopg)://…
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value or None

    @field_validator("sms_gateway_url", "wechat_template_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL")
        return value or None

    @field_validator("rate_limit", "auth_rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value:
            try:
                parse_rate(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a rate such as 20/second or 10/minute") from exc
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for entry in _split(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an address or network (e.g. 10.0.0.0/8)") from exc
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in ("json", "text"):
            raise ValueError("must be json or text")
        return value


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """TUANGOU_* names that no setting reads: most likely typos (TUANGOU_DATABSE_URL)."""
    known = {f"TUANGOU_{name.upper()}" for name in Settings.model_fields} | OTHER_VARIABLES
    return sorted(k for k in environ if k.upper().startswith("TUANGOU_") and k.upper() not in known)


def mask_url(url: str) -> str:
    """A database or Redis URL with its password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, colon, _ = creds.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"
