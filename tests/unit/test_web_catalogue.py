"""Every string the consoles mark for translation has its zh-CN translation in the committed catalogue,
and the catalogue compiles (it is compiled in memory at first use, so a fresh clone needs no build)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from tuangou.web import i18n

WEB = Path(i18n.__file__).parent
PO = WEB / "translations" / "zh_CN" / "LC_MESSAGES" / "messages.po"


def _marked() -> set[str]:
    with (WEB / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(WEB), method_map, options_map, keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return {m for m in found if m}


def test_every_marked_string_has_a_chinese_translation():
    with PO.open("rb") as f:
        catalog = read_po(f)
    translated = {m.id: m.string for m in catalog if m.id}
    missing = sorted(m for m in _marked() if not translated.get(m))
    assert not missing, f"add to {PO.relative_to(WEB.parents[2])}: {missing}"


def test_the_catalogue_compiles_and_english_is_the_source():
    zh = i18n.translations("zh_CN")
    assert zh.gettext("Sign in") == "登录"
    assert i18n.translations("en").gettext("Sign in") == "Sign in"
    assert i18n.yuan(2900) == "¥29.00" and i18n.yuan(-550) == "-¥5.50" and i18n.yuan(123456789) == "¥1,234,567.89"
    assert i18n.local_time("2026-11-23T02:00:00+00:00", "Asia/Shanghai") == "2026-11-23 10:00"
