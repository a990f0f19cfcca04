"""Audit log: who did what, searchable, filtered by actor, action and dates, each entry's
details, and the filtered list as CSV. Admins and owners only."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from streamlit_app import shell
from streamlit_app.components.formatting import clock
from streamlit_app.components.table import table_html
from streamlit_app.services import org as service

org = shell.current_org()
st.title("Audit log")
if not shell.may("admin"):
    st.info("The audit log is for admins and owners.")
    st.stop()

members = {m.user_id: m.name for m in service.members(org.organization_id)}
f1, f2, f3, f4 = st.columns(4)
text = f1.text_input("Search", key="audit.search", placeholder="action, resource or id")
actor = f2.selectbox(
    "Actor",
    [None, *members],
    format_func=lambda u: "Anyone" if u is None else members[u],
    key="audit.actor",
)
action = f3.selectbox(
    "Action",
    ["", *service.audit_actions(org.organization_id)],
    format_func=lambda a: a or "Any action",
    key="audit.action",
)
dates = f4.date_input("Between", value=(), key="audit.dates")
since = until = None
if isinstance(dates, tuple) and len(dates) == 2:
    since = int(datetime.combine(dates[0], time(), UTC).timestamp() * 1000)
    until = int(datetime.combine(dates[1] + timedelta(days=1), time(), UTC).timestamp() * 1000)

rows = service.audit_log(
    org.organization_id,
    actor_id=actor,
    action=action,
    text=text.strip(),
    since=since,
    until=until,
    limit=500,
)
if not rows:
    st.info("Nothing recorded yet for these filters.")
    st.stop()
st.download_button(
    "Download CSV",
    service.audit_csv(rows),
    file_name=f"audit-{org.slug}.csv",
    mime="text/csv",
    key="audit.csv",
)
st.html(
    table_html(
        [
            {
                "When": clock(r.created_at, st.context.timezone),
                "Actor": r.actor,
                "Type": r.actor_type,
                "Action": r.action,
                "Resource": f"{r.resource_type} {r.resource_id or ''}".strip(),
            }
            for r in rows
        ]
    )
)
by_id = {r.id: r for r in rows}
pick = st.selectbox(
    "Details of",
    list(by_id),
    format_func=lambda i: f"{by_id[i].action} · {clock(by_id[i].created_at, None)}",
    key="audit.pick",
)
r = by_id[pick]
st.json(
    {
        "actor": r.actor,
        "actorType": r.actor_type,
        "action": r.action,
        "resourceType": r.resource_type,
        "resourceId": r.resource_id,
        "ip": r.ip_address,
        "metadata": r.metadata,
    }
)
