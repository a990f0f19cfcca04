"""Overview: this period's usage against the plan, the last 24 hours (running, completed,
failed, success rate, average latency), active workflows, executions per day, and the latest
runs as a live activity feed."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from streamlit_app import shell
from streamlit_app.components.formatting import duration, until
from streamlit_app.components.live import watch_changes
from streamlit_app.components.runs_table import runs_table_html
from streamlit_app.services import overview as service
from tenancy.clock import now_ms

org = shell.current_org()
st.title("Overview")


def chart(per_day: list) -> go.Figure:
    fig = go.Figure(
        go.Bar(x=[d for d, _ in per_day], y=[n for _, n in per_day], marker_color="#0284c7")
    )
    fig.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 10, "b": 30},
        yaxis={"title": None, "rangemode": "tozero"},
        xaxis={"title": None, "tickformat": "%b %d"},
        plot_bgcolor="rgba(0,0,0,0)",
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig


@st.fragment
def live_overview() -> None:
    watch_changes(org.organization_id, ["run"], key="overview.live")
    shell.still_member(org)
    now = now_ms()
    ov = service.overview(org.organization_id, now=now)
    u = ov.usage
    st.progress(
        min(u.ratio, 1.0),
        text=f"**{u.used:,}** of {u.limit:,} executions this period · {u.plan} plan"
        + (f" · resets {until(u.reset_at, now)}" if u.reset_at > now else ""),
    )
    c = ov.counts_24h
    cols = st.columns(6)
    in_progress = sum(c.get(s, 0) for s in ("pending", "running", "suspended"))
    cols[0].metric("Running", in_progress, help="pending, running or suspended by a long delay")
    cols[1].metric("Completed, 24 h", c.get("completed", 0))
    cols[2].metric("Failed, 24 h", c.get("failed", 0) + c.get("timed_out", 0))
    rate = "—" if ov.success_rate is None else f"{ov.success_rate:.1%}"
    cols[3].metric("Success rate", rate)
    avg = "—" if ov.average_ms is None else duration(int(ov.average_ms))
    cols[4].metric("Average duration", avg)
    cols[5].metric("Active workflows", ov.workflows.get("active", 0))
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.markdown("#### Executions per day")
        st.plotly_chart(chart(ov.per_day), width="stretch", config={"displayModeBar": False})
    with right:
        st.markdown("#### Live activity")
        if ov.recent:
            st.html(runs_table_html(ov.recent[:8], now, columns=("Status", "Workflow", "Started")))
        else:
            st.info("No runs yet. Create a workflow, then send an event or run it by hand.")


live_overview()

st.markdown("#### Quick actions")
cols = st.columns(4)
if shell.may("member"):
    cols[0].page_link("app_pages/editor.py", label="New workflow")
cols[1].page_link("app_pages/runs.py", label="All runs")
cols[2].page_link("app_pages/events.py", label="Events")
if shell.may("admin"):
    cols[3].page_link("app_pages/api_keys.py", label="API keys")
