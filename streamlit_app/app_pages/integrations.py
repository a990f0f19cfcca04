"""Integrations: the organization's connections (Slack, GitHub, Salesforce, Stripe, custom
webhooks) as cards with their status, who connected them and when a step last used them;
admins connect one (credentials, or OAuth where it is set up), test it with a real call and
disconnect it. Credentials are never read back."""

from __future__ import annotations

import streamlit as st

from streamlit_app import shell
from streamlit_app.components.formatting import relative
from streamlit_app.components.text import md
from streamlit_app.services import integrations as service
from tenancy.clock import now_ms

TEST_KEY = "integrations.tested"

org = shell.current_org()
actor = shell.actor()
admin = shell.may("admin")
st.title("Integrations")
rows = service.integrations(org.organization_id)
now = now_ms()
tested: dict[str, dict] = st.session_state.setdefault(TEST_KEY, {})

if rows:
    cols = st.columns(3)
    for i, r in enumerate(rows):
        with cols[i % 3].container(border=True, key=f"integrations.card.{r.name}"):
            st.markdown(f"**{md(r.name)}** · {md(r.provider)}")
            st.markdown(("🟢 " if r.status == "active" else "🔴 ") + md(r.status))
            if r.last_error:
                st.caption(f"last error: {md(r.last_error)}")
            st.caption(
                f"connected by {md(r.connected_by or 'API')} {relative(r.created_at, now)} · "
                f"last used {relative(r.last_used_at, now) if r.last_used_at else 'never'}"
            )
            if result := tested.get(r.id):
                (st.success if result["ok"] else st.error)(
                    ("Connection works: " if result["ok"] else "Test failed: ")
                    + md(result["detail"])
                )
            if admin:
                a, b = st.columns(2)
                if a.button("Test", key=f"integrations.test.{r.id}"):
                    outcome = service.test(actor, r.id)
                    if outcome.ok:
                        tested[r.id] = outcome.value
                        st.rerun()
                    shell.report(outcome)
                with b.popover("Disconnect"):
                    st.write(f"Disconnect **{md(r.name)}**? Steps using it will fail.")
                    if st.button("Yes, disconnect", type="primary", key=f"integrations.del.{r.id}"):
                        tested.pop(r.id, None)
                        shell.report(service.disconnect(actor, r.id)) and st.rerun()
else:
    st.info("No integrations connected yet. Connect one below to use it as a workflow step.")

st.markdown("#### Connect")
if not admin:
    st.caption("Admins and owners connect, test and disconnect integrations.")
    st.stop()
forms = {p.name: p for p in service.providers()}
provider = st.radio(
    "Provider",
    list(forms),
    horizontal=True,
    format_func=lambda p: p.title(),
    key="integrations.provider",
)
form = forms[provider]
st.caption(form.description)
if form.oauth:
    with st.container(border=True):
        name = st.text_input("Name", provider, key=f"integrations.oauth_name.{provider}")
        if st.button(f"Connect with {provider.title()} (OAuth)", key="integrations.oauth"):
            outcome = service.oauth_start(actor, provider, name)
            if shell.report(outcome):
                st.link_button(f"Continue to {provider.title()} →", outcome.value)
    st.caption("Or give the credentials yourself:")
with st.form(f"integrations.connect.{provider}", clear_on_submit=False):
    name = st.text_input("Name (how steps refer to it)", key=f"integrations.name.{provider}")
    values = {
        f.name: st.text_input(
            f.name + ("" if f.required else " (optional)"),
            type="password" if f.secret else "default",
            key=f"integrations.{provider}.{f.name}",
        )
        for f in form.fields
    }
    if st.form_submit_button("Connect", type="primary"):
        shell.report(service.connect(actor, provider, name, values)) and st.rerun()
st.caption("Credentials are encrypted at rest and never shown again.")
