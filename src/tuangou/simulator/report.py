"""The report: one mode's numbers from its run, the side-by-side table, the JSON file and the HTML page."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table

from tuangou.simulator import rules
from tuangou.simulator.driver import Run
from tuangou.simulator.world import World


def summary(run: Run, world: World) -> dict[str, Any]:
    outcomes = Counter(rules.classify(r).value for r in run.records.values())
    harmed = [r for r in run.records.values() if rules.classify(r) in rules.HARMED]
    delays = [(r.remedied_at - r.failed_at).total_seconds() for r in harmed
              if r.remedied_at is not None and r.failed_at is not None]
    confirmed = [d for d in run.disputes.values() if d["status"] == "confirmed"]
    tiers = Counter(d["tier"] for d in run.disputes.values())
    dispute_paid = sum(int(d["remedy"].get("refund_cents", 0)) + int(d["remedy"].get("coupon_cents", 0))
                       + int(d["remedy"].get("side_item_cents", 0)) for d in confirmed)
    dispute_advanced = sum(int(d["remedy"].get("recovery_cents", 0)) for d in confirmed)  # booked on merchants
    breaker = [o for i in run.incidents for o in i["orders"]]
    breaker_paid = sum(o["refund_cents"] + o["coupon_cents"] for o in breaker)
    breaker_coupons = sum(o["coupon_cents"] for o in breaker)  # advanced by the platform ...
    recovered = dispute_advanced + run.breaker_recovered_cents  # ... and what was booked against merchants
    confirm_lag = [(datetime.fromisoformat(at) - datetime.fromisoformat(d["decided_at"])).total_seconds()
                   for d in confirmed for at in d["coupons_issued_at"]]
    causes = Counter(_cause(r, world) for r in harmed)
    honest = {s.index for s in world.stores if s.honesty == "truthful"}
    kept = sum(r.amount_cents for r in run.records.values()
               if r.store in honest and r.served_on is not None and r.failed_at is None)
    orders = run.placed
    p50, p99 = rules.percentile(delays, 50), rules.percentile(delays, 99)
    return {
        "orders": orders,
        "paid_orders": len(run.records),
        "unpaid_orders": run.unpaid,
        "refused": dict(sorted(run.refused.items())),
        "oversold_units": run.oversold_units,
        "harmed_buyers": len(harmed),
        "harmed_per_10k_orders": rules.per_10k(len(harmed), orders),
        "harmed_by_day": [run.harmed_by_day.get(d, 0) for d in range(max([world.days - 1, *run.harmed_by_day]) + 1)],
        "outcomes": {o.value: outcomes.get(o.value, 0) for o in rules.Outcome},
        "disputes": len(run.disputes),
        "disputes_by_tier": dict(sorted(tiers.items())),
        "disputes_confirmed": len(confirmed),
        "median_compensation_s": p50,
        "p99_compensation_s": p99,
        "confirm_to_compensation_max_s": max(confirm_lag) if confirm_lag else None,
        "harmed_by_cause": dict(sorted(causes.items())),
        "compensation_paid_cents": dispute_paid + breaker_paid,
        "advanced_by_platform_cents": dispute_advanced + breaker_coupons,
        "recovered_from_merchants_cents": recovered,
        "recovered_share": round(recovered / (dispute_advanced + breaker_coupons), 4)
        if dispute_advanced + breaker_coupons else None,
        "breaker_incidents": len(run.incidents),
        "breaker_orders": dict(sorted(Counter(o["outcome"] for o in breaker).items())),
        "merchants_limited": sum(1 for s in run.standings if s["limited"]),
        "merchants_removed": sum(1 for s in run.standings
                                 if any(p.get("kind") == "removal" for p in s["penalties_in_force"])),
        "merchants_recovered": None,  # limits lift after 7 clean days and an exam; no merchant sits one here
        "revenue_kept_by_honest_cents": kept,
        "groups": {"formed": None, "failed": None, "refunded": None},  # campaigns are not simulated yet
        "job_failures": run.job_failures,
    }


def _cause(r: rules.BuyerRecord, world: World) -> str:
    """Which rule let this harm through (what the platform believed versus what the store could do)."""
    store = world.stores[r.store]
    if store.honesty == "over_declares":
        return "declared capacity above the real one"
    if store.honesty == "oversells":
        return "over-sells on purpose"
    assert r.failed_at is not None
    day = (r.failed_at.astimezone(ZoneInfo(world.timezone)).date() - world.start).days
    if any(d.store == r.store and d.day == day for d in world.disruptions):
        return "sold before the disruption was reported"
    return "static cap above the day's capacity"


ROWS = [
    ("orders placed", "orders"), ("paid orders", "paid_orders"), ("over-sold units", "oversold_units"),
    ("buyers harmed", "harmed_buyers"), ("harmed per 10,000 orders", "harmed_per_10k_orders"),
    ("  served", "outcomes.served"), ("  moved with notice", "outcomes.moved_with_notice"),
    ("  refunded with notice", "outcomes.refunded_with_notice"), ("  harmed, compensated", "outcomes.compensated"),
    ("  harmed, refunded only", "outcomes.refunded"), ("  harmed, no remedy", "outcomes.harmed_without_remedy"),
    ("harmed by cause", "harmed_by_cause"), ("disputes (by tier)", "disputes_by_tier"), ("median failure -> compensation s", "median_compensation_s"),
    ("p99 failure -> compensation s", "p99_compensation_s"),
    ("max confirmation -> coupon s", "confirm_to_compensation_max_s"), ("refunds + coupons paid ¥", "compensation_paid_cents"),
    ("share recovered from merchants", "recovered_share"), ("breaker incidents", "breaker_incidents"),
    ("breaker orders", "breaker_orders"),
    ("merchants limited", "merchants_limited"), ("merchants removed", "merchants_removed"), ("revenue kept by honest merchants ¥", "revenue_kept_by_honest_cents"),
    ("refused orders", "refused"), ("groups formed / failed / refunded", "groups"),
    ("run: wall s / CPU s", "seconds"),
]


def _get(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None  # type: ignore[assignment]
    return data


def _fmt(value: Any, path: str) -> str:
    if value is None:
        return "-"
    if path.endswith("_cents"):
        return f"{value / 100:,.2f}"
    if isinstance(value, dict) and value and all(v is None for v in value.values()):
        return "not simulated"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if not path.endswith("share") else f"{value:.1%}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(result: dict[str, Any]) -> Table:
    modes = [m for m in ("on", "off") if m in result]
    t = Table(title=f"tuangou simulate: {result['stores']} stores x {result['days']} days, seed {result['seed']}")
    t.add_column("")
    for m in modes:
        t.add_column(f"governance {m}", justify="right")
    for label, path in ROWS:
        if path == "seconds":  # timings vary from run to run; the rest is the same for a seed
            t.add_row(label, *(f"{result[m].get('seconds', '-')} / {result[m].get('cpu_seconds', '-')}" for m in modes))
            continue
        t.add_row(label, *(_fmt(_get(result[m], path), path) for m in modes))
    return t


def _bars(title: str, values: dict[str, float | None], unit: str = "", colour: str | None = None) -> str:
    """A small horizontal bar chart, inline SVG."""
    top = max([v for v in values.values() if v] or [1])
    rows = []
    for i, (label, v) in enumerate(values.items()):
        width = 0 if not v else max(2, int(300 * v / top))
        fill = colour or ("#1a73e8" if label.endswith(" on") else "#d93025")
        shown = "-" if v is None else f"{v:,.1f}{unit}" if isinstance(v, float) else f"{v:,}{unit}"
        rows.append(f'<text x="0" y="{22 + i * 26}" font-size="12">{escape(label)}</text>'
                    f'<rect x="110" y="{10 + i * 26}" width="{width}" height="16" fill="{fill}"/>'
                    f'<text x="{116 + width}" y="{22 + i * 26}" font-size="12">{escape(shown)}</text>')
    height = 16 + 26 * len(values)
    return (f'<figure><figcaption>{escape(title)}</figcaption><svg width="520" height="{height}" role="img" '
            f'aria-label="{escape(title)}">{"".join(rows)}</svg></figure>')


def html(result: dict[str, Any]) -> str:
    modes = [m for m in ("on", "off") if m in result]
    charts = [
        _bars("Buyers harmed", {f"governance {m}": result[m]["harmed_buyers"] for m in modes}),
        _bars("Over-sold units", {f"governance {m}": result[m]["oversold_units"] for m in modes}),
        _bars("p99 failure to compensation (hours)", {
            f"governance {m}": None if result[m]["p99_compensation_s"] is None
            else round(result[m]["p99_compensation_s"] / 3600, 1) for m in modes}, " h"),
        _bars("Compensation paid (¥)", {f"governance {m}": result[m]["compensation_paid_cents"] // 100 for m in modes}),
    ]
    days = max(len(result[m]["harmed_by_day"]) for m in modes)
    charts.append(_bars("Buyers harmed per day (one scale)", {
        f"day {d + 1} {m}": (result[m]["harmed_by_day"][d] if d < len(result[m]["harmed_by_day"]) else 0)
        for d in range(days) for m in modes}))
    rows = "".join(f"<tr><th>{escape(label.strip())}</th>" + "".join(
        f"<td>{escape(_fmt(_get(result[m], path), path))}</td>" for m in modes) + "</tr>" for label, path in ROWS)
    head = "".join(f"<th>governance {m}</th>" for m in modes)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>tuangou simulate</title><style>body{{font-family:sans-serif;margin:2em;max-width:60em}}
td,th{{padding:2px 10px;text-align:right}} th:first-child{{text-align:left}} figure{{margin:1em 0}}</style></head>
<body><h1>A city's week: governance on and off</h1>
<p>{result['stores']} stores, {result['days']} days, seed {result['seed']}, database {escape(result['db'])},
generated {escape(result['generated_at'])}.</p>
<table><tr><th></th>{head}</tr>{rows}</table>{''.join(charts)}
<p>Harmed: the buyer came on the service day and the store had no capacity left (its real capacity,
not the cap the platform believed). See docs/adr/0013-simulator-outcome-model.md.</p></body></html>"""


def write(result: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "simulation.json", out / "simulation.html"
    json_path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    html_path.write_text(html(result))
    return json_path, html_path


def stamp() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")
