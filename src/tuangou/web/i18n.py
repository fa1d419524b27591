"""Languages of the consoles: Babel message catalogues (zh-CN default, en), money and local times.

The catalogue is the committed `translations/<locale>/LC_MESSAGES/messages.po`; it is compiled in
memory when first used, so a fresh clone needs no build step and a stale `.mo` can never be served.
English is the source language: its "catalogue" is the msgids themselves.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

HERE = Path(__file__).parent / "translations"
DEFAULT = "zh_CN"
LOCALES = ("zh_CN", "en")
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}


def N_(message: str) -> str:
    """Marks a string for extraction where it is translated later (tables of messages)."""
    return message


@cache
def translations(locale: str) -> NullTranslations:
    po = HERE / locale / "LC_MESSAGES" / "messages.po"
    if locale not in LOCALES or not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buf = BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def negotiate(chosen: str | None, accept_language: str | None) -> str:
    """The user's own choice, else the first language of Accept-Language we speak, else zh-CN."""
    if chosen in LOCALES:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


def yuan(cents: int | None) -> str:
    """Amounts are always yuan with two decimals: ¥12.50 (negative: -¥12.50)."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    return f"{sign}¥{cents // 100:,}.{cents % 100:02d}"


def local_time(value: str | datetime | None, tz: str, with_date: bool = True) -> str:
    """An instant shown in a time zone (the store's for merchants, the buyer's for buyers)."""
    if not value:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        return when.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")
    return when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


__all__ = ["DEFAULT", "HTML_LANG", "LOCALES", "N_", "negotiate", "local_time", "translations", "yuan"]
