"""Events: the live stream of ingested events, filtered by type (``order.*``), source and
status; one event's payload and the runs it started; replay one or many; and the dead letters
(events whose processing failed) with retry and discard."""

from __future__ import annotations

import html

import streamlit as st

from streamlit_app import shell
from streamlit_app.components.formatting import clock, relative
from streamlit_app.components.live import watch_changes
from streamlit_app.components.text import md
from streamlit_app.services import events as service
from tenancy.clock import now_ms

org = shell.current_org()
st.title("Events")

EVENT_COLORS = {
    "pending": "#a16207",
    "processed": "#15803d",
    "failed": "#b91c1c",
    "discarded": "#64748b",
}


def events_table_html(rows: list[service.EventRow], now: int) -> str:
    body = []
    for e in rows:
        color = EVENT_COLORS.get(e.status, "#334155")
        body.append(
            f'<tr data-event-id="{html.escape(e.id, quote=True)}">'
            f'<td><span class="orbin-badge" data-status="{html.escape(e.status)}" '
            f'style="color:{color};font-weight:600">{html.escape(e.status)}</span></td>'
            f"<td>{html.escape(e.event_type)}</td><td>{html.escape(e.source)}</td>"
            f"<td>{len(e.run_ids)}</td><td>{relative(e.created_at, now)}</td>"
            f"<td><code>{html.escape(e.id)}</code></td></tr>"
        )
    head = "".join(
        f"<th>{c}</th>" for c in ("Status", "Type", "Source", "Runs", "Received", "Event ID")
    )
    return (
        f'<table class="orbin-runs orbin-events"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


stream_tab, dead_tab = st.tabs(["Stream", "Dead letters"])

with stream_tab:
    f1, f2, f3 = st.columns(3)
    etype = f1.text_input("Type", key="events.type", placeholder="order.* or user.created")
    sources = service.sources(org.organization_id)
    source = f2.selectbox(
        "Source", ["", *sources], format_func=lambda s: s or "Any source", key="events.source"
    )
    status = f3.selectbox(
        "Status",
        ["", *service.EVENT_STATUSES],
        format_func=lambda s: s or "Any status",
        key="events.status",
    )

    @st.fragment
    def live_events() -> None:
        watch_changes(org.organization_id, ["event"], key="events.live")
        now = now_ms()
        rows = service.list_events(
            org.organization_id, event_type=etype.strip(), source=source, status=status
        )
        if not rows:
            st.info(
                "No events yet. POST one to /v1/events with an API key."
                if not (etype or source or status)
                else "No such events."
            )
            return
        st.html(events_table_html(rows, now))
        by_id = {e.id: e for e in rows}
        pick = st.selectbox(
            "Event",
            list(by_id),
            format_func=lambda i: f"{by_id[i].event_type} · {i}",
            key="events.pick",
        )
        detail = service.event_detail(org.organization_id, pick)
        if detail:
            e = detail.event
            st.caption(
                f"{md(e.source)} · received {clock(e.created_at, st.context.timezone)}"
                f" · {md(e.status)}"
            )
            if e.error:
                st.error(md(e.error))
            st.json(e.payload if e.payload is not None else {})
            for run_id, run_status in detail.runs:
                st.markdown(
                    f'- <a href="/run?id={run_id}" target="_self"><code>{run_id}</code></a>'
                    f" · {run_status}",
                    unsafe_allow_html=True,
                )
        if shell.may("member"):
            chosen = st.multiselect(
                "Replay events",
                list(by_id),
                format_func=lambda i: f"{by_id[i].event_type} · {i[:8]}",
                key="events.replay_ids",
            )
            if st.button("Replay selected", disabled=not chosen, key="events.replay"):
                shell.report(service.replay(shell.actor(), chosen))

    live_events()

with dead_tab:
    dead = service.list_events(org.organization_id, status="failed", limit=100)
    if not dead:
        st.success("No dead letters: every event was processed.")
    for e in dead:
        with st.container(border=True):
            st.markdown(f"**{md(e.event_type)}** · `{e.id}` · {relative(e.created_at, now_ms())}")
            st.caption(md(e.error or "failed"))
            if shell.may("member"):
                a, b, _ = st.columns([1, 1, 6])
                if a.button("Retry", key=f"events.retry.{e.id}"):
                    shell.report(service.retry_dead_letter(shell.actor(), e.id)) and st.rerun()
                if b.button("Discard", key=f"events.discard.{e.id}"):
                    shell.report(service.discard_dead_letter(shell.actor(), e.id)) and st.rerun()
