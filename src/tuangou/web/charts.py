"""Small inline SVG charts: no CDN, no JavaScript, readable at a glance on a phone."""

from __future__ import annotations

from html import escape


def gauge(sold: int, cap: int, red_at: float = 0.85, width: int = 220) -> str:
    """A horizontal bar: sold of cap, red past `red_at`."""
    share = 0.0 if cap <= 0 else min(1.0, sold / cap)
    colour = "#d93025" if share >= red_at else "#1a73e8"
    filled = int(width * share)
    label = f"{sold} / {cap} sold ({share:.0%})" if cap else f"{sold} sold, no cap"
    return (f'<svg class="gauge" width="{width}" height="28" role="img" aria-label="{escape(label)}">'
            f'<rect width="{width}" height="14" rx="7" fill="#e8eaed"/>'
            f'<rect width="{filled}" height="14" rx="7" fill="{colour}"/>'
            f'<text x="0" y="27" font-size="11" fill="#3c4043">{escape(label)}</text></svg>')


def sparkline(values: list[int], width: int = 220, height: int = 40) -> str:
    """A line of values over time (e.g. a score history)."""
    if not values:
        return ""
    top, bottom = max(values), min(values)
    span = (top - bottom) or 1
    step = width / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 4 - (v - bottom) / span * (height - 8):.1f}" for i, v in enumerate(values))
    return (f'<svg class="spark" width="{width}" height="{height}" role="img" aria-label="trend">'
            f'<polyline fill="none" stroke="#1a73e8" stroke-width="2" points="{points}"/></svg>')
