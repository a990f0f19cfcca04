"""Status badges in the PRD's colours (Tailwind's -100 background, -700 text) and icons."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class StatusStyle:
    label: str
    icon: str
    background: str
    text: str
    bar: str  # the timeline bar: the -500 shade of the same colour


STATUS_STYLES: Mapping[str, StatusStyle] = MappingProxyType(
    {
        "pending": StatusStyle("Pending", "◷", "#f1f5f9", "#334155", "#94a3b8"),
        "running": StatusStyle("Running", "⟳", "#dbeafe", "#1d4ed8", "#3b82f6"),
        "suspended": StatusStyle("Suspended", "⏸", "#ede9fe", "#6d28d9", "#8b5cf6"),
        "completed": StatusStyle("Completed", "✓", "#dcfce7", "#15803d", "#22c55e"),
        "failed": StatusStyle("Failed", "✕", "#fee2e2", "#b91c1c", "#ef4444"),
        "retrying": StatusStyle("Retrying", "↻", "#fef9c3", "#a16207", "#eab308"),
        "canceled": StatusStyle("Canceled", "⊘", "#f1f5f9", "#64748b", "#64748b"),
        "timed_out": StatusStyle("Timed out", "⚠", "#ffedd5", "#c2410c", "#f97316"),
        "skipped": StatusStyle("Skipped", "→", "#f1f5f9", "#64748b", "#cbd5e1"),
    }
)
_UNKNOWN = StatusStyle("Unknown", "?", "#f1f5f9", "#334155", "#94a3b8")


def style_of(status: str) -> StatusStyle:
    return STATUS_STYLES.get(status, _UNKNOWN)


def status_label(status: str) -> str:
    """Icon and name, for places that take plain text (table cells, radio labels)."""
    s = style_of(status)
    return f"{s.icon} {s.label}"


def badge_html(status: str) -> str:
    s = style_of(status)
    pulse = "animation: orbin-pulse 1.5s ease-in-out infinite;" if status == "running" else ""
    return (
        f'<span class="orbin-badge" data-status="{html.escape(status)}" style="display:inline-flex;'
        f"align-items:center;gap:.35rem;padding:.15rem .65rem;border-radius:9999px;"
        f'font-size:.8rem;font-weight:500;background:{s.background};color:{s.text};{pulse}">'
        f"{s.icon} {html.escape(s.label)}</span>"
    )
