"""Workflows: every workflow of the organization with its trigger, last run and 7-day
executions; filters (status, trigger, creator, created between), sort, and actions: edit,
pause/resume, duplicate, archive (with confirmation)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from streamlit_app import shell
from streamlit_app.components.formatting import relative
from streamlit_app.components.table import table_html
from streamlit_app.services import workflows as service
from tenancy.clock import now_ms

org = shell.current_org()
st.title("Workflows")
if shell.may("member"):
    st.page_link("app_pages/editor.py", label="＋ New workflow")

now = now_ms()
f1, f2, f3, f4 = st.columns(4)
statuses = f1.multiselect(
    "Status", ["active", "draft", "paused", "archived"], key="workflows.status"
)
triggers = f2.multiselect(
    "Trigger", ["event", "webhook", "schedule", "manual"], key="workflows.trigger"
)
search = f3.text_input("Search", key="workflows.search", placeholder="name or slug")
dates = f4.date_input("Created between", value=(), key="workflows.dates")
since = until = None
if isinstance(dates, tuple) and len(dates) == 2:
    since = int(datetime.combine(dates[0], time(), UTC).timestamp() * 1000)
    until = int(datetime.combine(dates[1] + timedelta(days=1), time(), UTC).timestamp() * 1000)

rows = service.list_workflows(
    org.organization_id,
    now=now,
    statuses=tuple(statuses),
    trigger_types=tuple(triggers),
    search=search.strip(),
    created_since=since,
    created_until=until,
)
creators = sorted({r.created_by for r in rows if r.created_by})
if creators:
    chosen = st.multiselect("Created by", creators, key="workflows.creator")
    if chosen:
        rows = [r for r in rows if r.created_by in chosen]

if not rows:
    st.info(
        "No such workflows."
        if statuses or triggers or search or since
        else "No workflows yet. Create one in the editor, or send a spec to POST /v1/workflows."
    )
    st.stop()

SORTS = {
    "Recently updated": (lambda r: r.updated_at, True),
    "Name": (lambda r: r.name.lower(), False),
    "Last run": (lambda r: r.last_run_at or 0, True),
    "Runs, 7 days": (lambda r: r.runs_7d, True),
}
order = st.selectbox("Sort by", list(SORTS), key="workflows.sort")
by, descending = SORTS[order]
rows = sorted(rows, key=by, reverse=descending)
st.html(
    table_html(
        [
            {
                "Name": r.name,
                "Slug": r.slug,
                "Status": r.status,
                "Trigger": r.trigger_type,
                "Version": r.version,
                "Last run": relative(r.last_run_at, now) if r.last_run_at else "never",
                "Runs, 7 days": r.runs_7d,
                "Created by": r.created_by or "API",
                "Updated": relative(r.updated_at, now),
            }
            for r in rows
        ]
    )
)

st.markdown("#### Actions")
by_id = {r.id: r for r in rows}
pick = st.selectbox(
    "Workflow",
    list(by_id),
    format_func=lambda i: f"{by_id[i].name} ({by_id[i].status})",
    key="workflows.pick",
)
wf = by_id[pick]
cols = st.columns(5)
cols[0].page_link("app_pages/editor.py", label="Edit", query_params={"id": wf.id})
if shell.may("member"):
    actor = shell.actor()
    if wf.status == "active" and cols[1].button("Pause", key="workflows.pause"):
        shell.report(service.set_status(actor, wf.id, "paused")) and st.rerun()
    if wf.status in ("paused", "draft") and cols[1].button("Activate", key="workflows.activate"):
        shell.report(service.set_status(actor, wf.id, "active")) and st.rerun()
    if cols[2].button("Duplicate", key="workflows.duplicate"):
        shell.report(service.duplicate(actor, wf.id)) and st.rerun()
    if wf.status != "archived":
        with cols[3].popover("Archive"):
            st.write(f"Archive **{wf.name}**? It stops running; its runs are kept.")
            if st.button("Yes, archive", key="workflows.archive", type="primary"):
                shell.report(service.set_status(actor, wf.id, "archived")) and st.rerun()
