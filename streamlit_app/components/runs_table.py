"""The runs list as an HTML table: PRD badges, and every cell a link to the run's debugger.

Plain HTML (``st.html``) renders at once: no data-grid bundle to fetch and draw, no markdown
pipeline, which keeps the dashboard's first load short. The links are ordinary
``/run?id=<id>`` deep links.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import quote

from streamlit_app.components.formatting import duration, relative
from streamlit_app.components.status import badge_html
from tenancy.runs import RUN_FINAL

COLUMNS = ("Status", "Workflow", "Trigger", "Started", "Duration", "Run ID")


class RunLike(Protocol):
    id: str
    status: str
    workflow_name: str
    trigger_type: str
    created_at: int
    started_at: int | None
    duration_ms: int | None


def run_href(run_id: str) -> str:
    return f"/run?id={quote(run_id, safe='')}"


def _took(r: RunLike, now_ms: int) -> str:
    if r.duration_ms is not None:
        return duration(r.duration_ms)
    if r.started_at is not None and r.status not in RUN_FINAL:
        return f"{duration(now_ms - r.started_at)} …"
    return "—"


def _cell(column: str, r: RunLike, now_ms: int) -> str:
    if column == "Status":
        return badge_html(r.status)
    if column == "Workflow":
        return html.escape(r.workflow_name)
    if column == "Trigger":
        return html.escape(r.trigger_type)
    if column == "Started":
        return relative(r.started_at or r.created_at, now_ms)
    if column == "Duration":
        return _took(r, now_ms)
    return f"<code>{html.escape(r.id)}</code>"


def runs_table_html(
    rows: Sequence[RunLike], now_ms: int, *, columns: Sequence[str] = COLUMNS
) -> str:
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = []
    for r in rows:
        href = html.escape(run_href(r.id), quote=True)
        tds = "".join(f'<td><a href="{href}">{_cell(c, r, now_ms)}</a></td>' for c in columns)
        body.append(f'<tr data-run-id="{html.escape(r.id, quote=True)}">{tds}</tr>')
    return (
        f'<table class="orbin-runs"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
