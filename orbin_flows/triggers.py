"""Which workflows an event starts: exact type or ``prefix.*`` pattern, plus payload filters."""

from __future__ import annotations

from typing import Any

_MISSING = object()


def matches_type(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def _lookup(document: Any, path: str) -> Any:
    cur = document
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def matches_filter(filters: dict[str, Any] | None, event: dict[str, Any]) -> bool:
    """Each key is a path into ``{"type", "source", "data"}``; a list value means 'one of'."""
    for path, expected in (filters or {}).items():
        value = _lookup(event, path)
        if value is _MISSING:
            return False
        if isinstance(expected, list):
            if value not in expected:
                return False
        elif value != expected:
            return False
    return True


def event_trigger_matches(trigger: dict[str, Any], event: dict[str, Any]) -> bool:
    if trigger.get("type") != "event":
        return False
    config = trigger.get("config") or {}
    pattern = config.get("eventType")
    if not pattern or not matches_type(pattern, event["type"]):
        return False
    return matches_filter(config.get("filter"), event)
