"""API keys: create one (name, type, permissions, expiry), shown once with a copy button;
the list masked, with last use and creator; rotate and revoke. Admins and owners only."""

from __future__ import annotations

from datetime import UTC, datetime, time

import streamlit as st

from streamlit_app import shell
from streamlit_app.components.formatting import clock, relative
from streamlit_app.components.table import table_html
from streamlit_app.services import keys as service
from tenancy.clock import now_ms

REVEAL_KEY = "api_keys.revealed"

org = shell.current_org()
st.title("API keys")
admin = shell.may("admin")
now = now_ms()

if revealed := st.session_state.pop(REVEAL_KEY, None):
    st.warning("Copy this key now. It is shown only once and cannot be read again.")
    st.code(revealed, language=None)

if admin:
    with st.expander("Create a key", expanded=False):
        with st.form("api_keys.create", clear_on_submit=True):
            name = st.text_input("Name", key="api_keys.name")
            ktype = st.selectbox(
                "Type",
                service.KEY_TYPES,
                index=1,
                key="api_keys.type",
                help="publishable: send events only; secret: everything; "
                "restricted: the permissions chosen",
            )
            perms = st.multiselect(
                "Permissions (restricted keys)", service.ALL_PERMISSIONS, key="api_keys.perms"
            )
            expires = st.date_input("Expires", value=None, key="api_keys.expires")
            if st.form_submit_button("Create key", type="primary"):
                expires_at = (
                    int(datetime.combine(expires, time(), UTC).timestamp() * 1000)
                    if expires
                    else None
                )
                outcome = service.create(
                    actor := shell.actor(),
                    name=name,
                    type=ktype,
                    permissions=perms or None,
                    expires_at=expires_at,
                )
                if shell.report(outcome):
                    st.session_state[REVEAL_KEY] = outcome.value.plaintext
                    st.rerun()
else:
    st.caption("Only admins and owners create, rotate or revoke keys.")

keys = service.list_keys(org.organization_id)
if not keys:
    st.info("No API keys yet. Create a secret key to send events and manage workflows.")
    st.stop()


def state(k: service.ApiKeyRow) -> str:
    if k.revoked_at:
        return "revoked"
    if k.expires_at and k.expires_at <= now:
        return "expired"
    return "active"


st.html(
    table_html(
        [
            {
                "Name": k.name,
                "Type": k.type,
                "Key": k.masked,
                "Permissions": ", ".join(k.permissions or [])
                or ("all" if k.type == "secret" else "events:write"),
                "State": state(k),
                "Last used": relative(k.last_used_at, now) if k.last_used_at else "never",
                "Expires": clock(k.expires_at, st.context.timezone) if k.expires_at else "never",
                "Created by": k.created_by or "CLI",
                "Created": relative(k.created_at, now),
            }
            for k in keys
        ]
    )
)

live = [k for k in keys if state(k) == "active"]
if admin and live:
    by_id = {k.id: k for k in live}
    pick = st.selectbox(
        "Key",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} · {by_id[i].masked}",
        key="api_keys.pick",
    )
    a, b, _ = st.columns([1, 1, 6])
    if a.button("Rotate", key="api_keys.rotate"):
        outcome = service.rotate(shell.actor(), pick)
        if shell.report(outcome):
            st.session_state[REVEAL_KEY] = outcome.value.plaintext
            st.rerun()
    with b.popover("Revoke"):
        st.write(f"Revoke **{by_id[pick].name}**? Requests with it fail at once.")
        if st.button("Yes, revoke", type="primary", key="api_keys.revoke"):
            shell.report(service.revoke(shell.actor(), pick)) and st.rerun()
