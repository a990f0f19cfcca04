"""Members: who belongs to the organization and with which role; admins invite by e-mail (the
link is mailed), resend or revoke pending invitations, change roles and remove members (with
confirmation); only owners touch owners."""

from __future__ import annotations

import html

import streamlit as st

from streamlit_app import shell
from streamlit_app.components.formatting import relative, until
from streamlit_app.components.table import table_html
from streamlit_app.components.text import md
from streamlit_app.services import invitations
from streamlit_app.services import org as service
from tenancy.clock import now_ms

org = shell.current_org()
me = shell.current_user()
actor = shell.actor()
admin = shell.may("admin")
st.title("Members")
rows = service.members(org.organization_id)
now = now_ms()
st.html(
    table_html(
        [
            {
                "Name": m.name,
                "E-mail": m.email,
                "Role": m.role,
                "Joined": relative(m.joined_at, now),
            }
            for m in rows
        ]
    )
)

st.markdown("#### Invite")
if admin:
    with st.form("members.invite", clear_on_submit=True):
        a, b = st.columns([3, 1])
        email = a.text_input("E-mail", placeholder="teammate@example.com", key="members.email")
        role = b.selectbox(
            "Role",
            invitations.roles_to_invite(org.role),
            index=1,  # member: viewer < member < ...
            key="members.invite_role",
        )
        if st.form_submit_button("Send invitation", type="primary"):
            shell.report(invitations.invite(actor, email, role)) and st.rerun()
    st.caption("The invitee gets a link by e-mail: it works once and expires in 7 days.")
else:
    st.caption("Admins and owners invite people.")

st.markdown("#### Pending invitations")
listed = invitations.pending(actor)
pending = listed.value if listed.ok else []
if not pending:
    st.caption("No pending invitations." + (" Invite your team above." if admin else ""))
for i in pending:
    c = st.columns([4, 2, 3, 1, 1], vertical_alignment="center")
    c[0].html(f"<b>{html.escape(i.email)}</b>")  # markdown would make it a mailto: link
    c[1].markdown(md(i.role))
    c[2].caption(f"by {md(i.invited_by)} · expires {until(i.expires_at, now)}")
    if admin and c[3].button("Resend", key=f"members.resend.{i.id}"):
        shell.report(invitations.resend(actor, i.id)) and st.rerun()
    if admin and c[4].button("Revoke", key=f"members.revoke.{i.id}"):
        shell.report(invitations.revoke(actor, i.id)) and st.rerun()

st.markdown("#### Roles")
if not admin:
    st.caption("Admins and owners change roles and remove members.")
    st.stop()

others = {m.user_id: m for m in rows if m.user_id != me.id}
if not others:
    st.info("You are the only member. Invite your team to work together.")
    st.stop()
pick = st.selectbox(
    "Member",
    list(others),
    format_func=lambda u: f"{others[u].name} ({others[u].role})",
    key="members.pick",
)
m = others[pick]
a, b = st.columns([3, 1])
role = a.selectbox("Role", service.ROLES, index=service.ROLES.index(m.role), key="members.role")
if a.button("Change role", disabled=role == m.role, key="members.change"):
    shell.report(service.change_role(actor, pick, role)) and st.rerun()
with b.popover("Remove"):
    st.write(f"Remove **{md(m.name)}** from {md(org.name)}? They lose access at once.")
    if st.button("Yes, remove", type="primary", key="members.remove"):
        shell.report(service.remove_member(actor, pick)) and st.rerun()
