"""Runs: the organization's recent runs, newest first, with the last 24 hours at a glance.

The list refreshes itself every two seconds; each run links to its debugger, and
``?run=<id>`` on this page links straight to it too.
"""

from __future__ import annotations

import streamlit as st

from streamlit_app import data, shell
from streamlit_app.components.runs_table import runs_table_html
from streamlit_app.components.status import status_label
from tenancy.clock import now_ms
from tenancy.runs import RUN_STATUSES

REFRESH_SECONDS = 2
DAY_MS = 24 * 3600 * 1000

org = shell.current_org()

if deep_link := st.query_params.get("run"):
    st.switch_page("app_pages/run_detail.py", query_params={"run": deep_link})

st.title("Runs")


def overview(now: int) -> None:
    counts = data.run_counts_since(org.organization_id, now - DAY_MS)
    cols = st.columns(5)
    cols[0].metric("Runs, last 24 h", sum(counts.values()))
    cols[1].metric("Running", counts.get("running", 0) + counts.get("pending", 0))
    cols[2].metric("Completed", counts.get("completed", 0))
    cols[3].metric("Failed", counts.get("failed", 0))
    cols[4].metric("Canceled or timed out", counts.get("canceled", 0) + counts.get("timed_out", 0))


@st.fragment(run_every=REFRESH_SECONDS)
def live_runs() -> None:
    shell.still_member(org)
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
    if not rows:
        st.info("No runs yet. Send an event to start one." if not statuses else "No such runs.")
        return
    st.html(runs_table_html(rows, now))


live_runs()
