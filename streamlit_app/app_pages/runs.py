"""Runs: the organization's recent runs, newest first, with the last 24 hours at a glance.

The list refreshes itself every two seconds; picking a row opens the run's debugger, and
``?run=<id>`` links straight to it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from streamlit_app import data, shell
from streamlit_app.components.formatting import duration, relative
from streamlit_app.components.status import status_cell_css, status_label
from tenancy.clock import now_ms
from tenancy.runs import RUN_FINAL, RUN_STATUSES

REFRESH_SECONDS = 2
RUN_DETAIL_PAGE = "app_pages/run_detail.py"
DAY_MS = 24 * 3600 * 1000
TABLE_KEY = "runs.table"
SHOWN_KEY = "runs.shown_ids"

org = shell.current_org()

if deep_link := st.query_params.get("run"):
    st.switch_page(RUN_DETAIL_PAGE, query_params={"run": deep_link})

st.title("Runs")


def open_selected_run() -> None:
    """The row (or a cell of it) picked in the table shown last, by id: rows may have moved."""
    state = st.session_state.get(TABLE_KEY)
    if not state:
        return
    picked = [*state.selection.rows, *(row for row, _ in state.selection.cells)]
    shown = st.session_state.get(SHOWN_KEY, [])
    if picked and picked[0] < len(shown):
        st.switch_page(RUN_DETAIL_PAGE, query_params={"run": shown[picked[0]]})


def overview(now: int) -> None:
    counts = data.run_counts_since(org.organization_id, now - DAY_MS)
    cols = st.columns(5)
    cols[0].metric("Runs, last 24 h", sum(counts.values()))
    cols[1].metric("Running", counts.get("running", 0) + counts.get("pending", 0))
    cols[2].metric("Completed", counts.get("completed", 0))
    cols[3].metric("Failed", counts.get("failed", 0))
    cols[4].metric("Canceled or timed out", counts.get("canceled", 0) + counts.get("timed_out", 0))


def runs_frame(rows: list[data.RunRow], now: int) -> pd.DataFrame:
    def took(r: data.RunRow) -> str:
        if r.duration_ms is not None:
            return duration(r.duration_ms)
        if r.started_at is not None and r.status not in RUN_FINAL:
            return f"{duration(now - r.started_at)} …"
        return "—"

    return pd.DataFrame(
        {
            "Status": [status_label(r.status) for r in rows],
            "Workflow": [r.workflow_name for r in rows],
            "Trigger": [r.trigger_type for r in rows],
            "Started": [relative(r.started_at or r.created_at, now) for r in rows],
            "Duration": [took(r) for r in rows],
            "Run ID": [r.id for r in rows],
        }
    )


@st.fragment(run_every=REFRESH_SECONDS)
def live_runs() -> None:
    shell.still_member(org)
    open_selected_run()
    now = now_ms()
    overview(now)
    statuses = st.pills(
        "Status",
        RUN_STATUSES,
        selection_mode="multi",
        format_func=status_label,
        key="runs.status",
    )
    rows = data.recent_runs(org.organization_id, statuses=tuple(statuses or ()))
    st.session_state[SHOWN_KEY] = [r.id for r in rows]
    if not rows:
        st.info("No runs yet. Send an event to start one." if not statuses else "No such runs.")
        return
    st.dataframe(
        runs_frame(rows, now).style.map(status_cell_css, subset=["Status"]),
        key=TABLE_KEY,
        on_select="rerun",
        selection_mode=["single-row", "single-cell"],
        hide_index=True,
        width="stretch",
        column_config={
            "Status": st.column_config.TextColumn(width="small"),
            "Run ID": st.column_config.TextColumn(width="medium"),
        },
    )
    st.caption("Click a run to open its steps.")


live_runs()
