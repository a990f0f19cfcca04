"""Times and durations as people read them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def relative(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "—"
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def until(ms: int | None, now_ms: int) -> str:
    """A countdown ("in 4 s") to a time in the future."""
    if ms is None:
        return "—"
    seconds = max(0, -(-(ms - now_ms) // 1000))
    if seconds == 0:
        return "now"
    return f"in {seconds} s" if seconds < 60 else f"in {duration(seconds * 1000)}"


def clock(ms: int | None, timezone: str | None) -> str:
    """Wall-clock time in the browser's time zone (UTC when it is unknown)."""
    if ms is None:
        return "—"
    try:
        tz = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        tz = UTC
    when = datetime.fromtimestamp(ms / 1000, tz)
    return when.strftime("%Y-%m-%d %H:%M:%S %Z")
