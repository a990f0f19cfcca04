"""The runs list as an HTML table: PRD badges, and every cell a link to the run's debugger.

Plain HTML (``st.html``) renders at once: no data-grid bundle to fetch and draw, no markdown
pipeline, which keeps the dashboard's first load short. The links are ordinary
``/run?run=<id>`` deep links.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from urllib.parse import quote

from streamlit_app.components.formatting import duration, relative
from streamlit_app.components.status import badge_html
from streamlit_app.data import RunRow
from tenancy.runs import RUN_FINAL

COLUMNS = ("Status", "Workflow", "Trigger", "Started", "Duration", "Run ID")


def run_href(run_id: str) -> str:
    return f"/run?run={quote(run_id, safe='')}"


def _took(r: RunRow, now_ms: int) -> str:
    if r.duration_ms is not None:
        return duration(r.duration_ms)
    if r.started_at is not None and r.status not in RUN_FINAL:
        return f"{duration(now_ms - r.started_at)} …"
    return "—"


def runs_table_html(rows: Sequence[RunRow], now_ms: int) -> str:
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = []
    for r in rows:
        cells = (
            badge_html(r.status),
            html.escape(r.workflow_name),
            html.escape(r.trigger_type),
            relative(r.started_at or r.created_at, now_ms),
            _took(r, now_ms),
            f"<code>{html.escape(r.id)}</code>",
        )
        href = html.escape(run_href(r.id), quote=True)
        tds = "".join(f'<td><a href="{href}">{c}</a></td>' for c in cells)
        body.append(f'<tr data-run-id="{html.escape(r.id, quote=True)}">{tds}</tr>')
    return (
        f'<table class="orbin-runs"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
