"""Runs: the organization's runs, newest first, filtered by status, workflow and time, with
the last 24 hours at a glance; older pages by keyset (the id of the last run shown).

The first page is live: a run created, started or finished changes it within a fraction of a
second, pushed by the change feed (components/live.py). ``?run=<id>`` (or ``?id=``) on this
page opens that run's debugger.
"""

from __future__ import annotations

import streamlit as st

from streamlit_app import data, shell
from streamlit_app.components.live import watch_changes
from streamlit_app.components.runs_table import runs_table_html
from streamlit_app.components.status import status_label
from streamlit_app.services import runs as service
from tenancy.clock import now_ms
from tenancy.runs import RUN_STATUSES

DAY_MS = 24 * 3600 * 1000
WINDOWS = {"Any time": None, "Last hour": 3600_000, "Last 24 h": DAY_MS, "Last 7 days": 7 * DAY_MS}
CURSOR_KEY = "runs.cursors"

org = shell.current_org()

if deep_link := st.query_params.get("run") or st.query_params.get("id"):
    st.switch_page("app_pages/run_detail.py", query_params={"id": deep_link})

st.title("Runs")


def overview(now: int) -> None:
    counts = data.run_counts_since(org.organization_id, now - DAY_MS)
    cols = st.columns(5)
    cols[0].metric("Runs, last 24 h", sum(counts.values()))
    in_progress = sum(counts.get(s, 0) for s in ("pending", "running", "suspended"))
    cols[1].metric("Running", in_progress, help="pending, running or suspended by a long delay")
    cols[2].metric("Completed", counts.get("completed", 0))
    cols[3].metric("Failed", counts.get("failed", 0))
    cols[4].metric("Canceled or timed out", counts.get("canceled", 0) + counts.get("timed_out", 0))


names = service.workflow_names(org.organization_id)
cursors: list[str] = st.session_state.setdefault(CURSOR_KEY, [])


def reset_pages() -> None:
    st.session_state[CURSOR_KEY] = []


@st.fragment
def live_runs() -> None:
    cursors = st.session_state.setdefault(CURSOR_KEY, [])
    if not cursors:  # only the newest page moves
        watch_changes(org.organization_id, ["run"], key="runs.live")
    shell.still_member(org)
    now = now_ms()
    overview(now)
    statuses = st.pills(
        "Status",
        RUN_STATUSES,
        selection_mode="multi",
        format_func=status_label,
        key="runs.status",
        on_change=reset_pages,
    )
    left, right = st.columns(2)
    workflow_id = left.selectbox(
        "Workflow",
        [None, *names],
        format_func=lambda i: "All workflows" if i is None else names[i],
        key="runs.workflow",
        on_change=reset_pages,
    )
    window = right.selectbox("Time", list(WINDOWS), key="runs.window", on_change=reset_pages)
    span = WINDOWS[window]
    rows = service.run_page(
        org.organization_id,
        statuses=tuple(statuses or ()),
        workflow_id=workflow_id,
        since=now - span if span else None,
        before=cursors[-1] if cursors else None,
    )
    filtered = bool(statuses or workflow_id or span)
    if not rows:
        st.info(
            "No such runs." if filtered or cursors else "No runs yet. Send an event to start one."
        )
    else:
        st.html(runs_table_html(rows, now))
    nav = st.columns([1, 1, 6])
    if cursors and nav[0].button("← Newer", key="runs.newer"):
        cursors.pop()
        st.rerun(scope="fragment")
    if len(rows) == service.PAGE_SIZE and nav[1].button("Older →", key="runs.older"):
        cursors.append(rows[-1].id)
        st.rerun(scope="fragment")
    if rows and shell.may("member"):
        with st.expander("Actions on a run"):
            pick = st.selectbox(
                "Run",
                [r.id for r in rows],
                format_func=lambda i: next(
                    f"{i} · {r.workflow_name} · {r.status}" for r in rows if r.id == i
                ),
                key="runs.pick",
            )
            a, b, c = st.columns(3)
            if a.button("View", key="runs.view"):
                st.switch_page("app_pages/run_detail.py", query_params={"id": pick})
            if b.button("Replay", key="runs.replay") and shell.report(
                service.replay(shell.actor(), pick)
            ):
                st.rerun(scope="fragment")
            if c.button("Cancel", key="runs.cancel") and shell.report(
                service.cancel(shell.actor(), pick)
            ):
                st.rerun(scope="fragment")


live_runs()
