"""Small inline SVG charts: no CDN, no JavaScript, readable at a glance on a phone, labelled for
screen readers (role="img" with an aria-label; the text is also drawn)."""

from __future__ import annotations

from html import escape


def gauge(sold: int, cap: int, red_at: float = 0.85, width: int = 240, label: str | None = None) -> str:
    """A horizontal bar: sold of cap, red from `red_at` (the policy's red-flag share) on."""
    share = 0.0 if cap <= 0 else min(1.0, sold / cap)
    red = cap > 0 and share >= red_at
    colour = "#c5221f" if red else "#1a56c4"
    filled = int(width * share)
    text = label or (f"{sold} / {cap} sold ({share:.0%})" if cap else f"{sold} sold, no cap")
    return (f'<svg class="gauge{" red" if red else ""}" viewBox="0 0 {width} 34" width="{width}" height="34" '
            f'role="img" aria-label="{escape(text)}">'
            f'<rect width="{width}" height="14" rx="7" fill="#e8eaed"/>'
            f'<rect width="{filled}" height="14" rx="7" fill="{colour}"/>'
            f'<text x="0" y="30" font-size="12" fill="#202124">{escape(text)}</text></svg>')


def sparkline(values: list[int], width: int = 240, height: int = 48, label: str = "trend") -> str:
    """A line of values over time (a score history), its last value drawn at the end."""
    if not values:
        return ""
    top, bottom = max(values), min(values)
    span = (top - bottom) or 1
    step = (width - 30) / max(1, len(values) - 1)
    points = [(i * step, height - 6 - (v - bottom) / span * (height - 12)) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    x, y = points[-1]
    return (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(label)}: {", ".join(str(v) for v in values)}">'
            f'<polyline fill="none" stroke="#1a56c4" stroke-width="2" points="{line}"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1a56c4"/>'
            f'<text x="{x + 6:.1f}" y="{y + 4:.1f}" font-size="12" fill="#202124">{values[-1]}</text></svg>')


def bars(values: list[tuple[str, int]], width: int | None = None, height: int = 120, label: str = "per day") -> str:
    """Vertical bars with their labels under them (platform charts: orders, incidents per day); the
    drawing scales down to the card's width."""
    if not values:
        return ""
    width = width or max(320, 40 * len(values))
    top = max(v for _, v in values) or 1
    slot = width / len(values)
    parts = []
    for i, (name, v) in enumerate(values):
        h = (height - 30) * v / top
        x = i * slot + slot * 0.15
        parts.append(f'<rect x="{x:.1f}" y="{height - 18 - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                     f'fill="#1a56c4"><title>{escape(name)}: {v}</title></rect>'
                     f'<text x="{x:.1f}" y="{height - 4}" font-size="10" fill="#202124">{escape(name)}</text>'
                     + (f'<text x="{x:.1f}" y="{height - 21 - h:.1f}" font-size="10" fill="#202124">{v}</text>'
                        if v else ""))
    summary = ", ".join(f"{n}: {v}" for n, v in values)
    return (f'<svg class="bars" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(label)}: {escape(summary)}">{"".join(parts)}</svg>')
