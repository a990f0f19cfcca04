"""Executions per day as plain HTML bars: drawn at once, no chart library to load."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date


def day_bars_html(per_day: Sequence[tuple[date, int]], height_px: int = 120) -> str:
    top = max((n for _, n in per_day), default=0) or 1
    bars = "".join(
        f'<div class="orbin-bar" title="{d.isoformat()}: {n:,}" data-day="{d.isoformat()}" '
        f'data-count="{n}"><span style="height:{max(1, round(n / top * height_px))}px"></span>'
        f"<small>{d.strftime('%d')}</small></div>"
        for d, n in per_day
    )
    return (
        f'<div class="orbin-bars" style="height:{height_px + 24}px">{bars}</div>'
        f'<p class="orbin-bars-caption">most in a day: {top:,}</p>'
    )
