"""Account: your profile and organizations, your password (a change signs every session out),
two-factor sign-in (TOTP: a QR code drawn here, a first code, recovery codes shown once), the
sessions signed in to your account, what you are notified of, and the dashboard's look."""

from __future__ import annotations

import streamlit as st

from streamlit_app import accounts, shell
from streamlit_app.components.formatting import relative
from streamlit_app.components.qr import qr_png
from streamlit_app.components.table import table_html
from streamlit_app.components.text import md
from streamlit_app.services import account as service
from tenancy.clock import now_ms

PENDING_KEY = "account.mfa_pending"
CODES_KEY = "account.recovery_codes"

user = shell.current_user()
st.title("Account")
me = service.profile(user.id)
now = now_ms()
c = st.columns(2)
c[0].text_input("Name", me.name, disabled=True)
c[1].text_input("E-mail", me.email, disabled=True)

st.markdown("#### Organizations")
st.html(
    table_html(
        [
            {"Organization": m.name, "Slug": m.slug, "Role": m.role}
            for m in accounts.read_memberships(user.id)
        ]
    )
)

st.markdown("#### Password")
with st.form("account.password", clear_on_submit=True):
    current = st.text_input("Current password", type="password", key="account.pw_current")
    new = st.text_input(
        "New password (at least 12 characters)", type="password", key="account.pw_new"
    )
    repeat = st.text_input("Repeat the new password", type="password", key="account.pw_repeat")
    changed = st.form_submit_button("Change password")
if changed:
    outcome = service.change_password(user.id, current=current, new=new, repeat=repeat)
    if outcome.ok:
        # The dashboard's session is bound to the password: this one has ended too.
        st.success(outcome.message + " Sign in again with the new password.")
        st.markdown('<a href="/signout" target="_self">Sign in again</a>', unsafe_allow_html=True)
        st.stop()
    shell.report(outcome)

st.markdown("#### Two-factor sign-in (MFA)")
if codes := st.session_state.get(CODES_KEY):
    st.success(
        "MFA is on. Save these recovery codes now: each works once, and they are not shown again."
    )
    st.code("\n".join(codes), language=None)
    if st.button("I saved them", key="account.codes_done"):
        st.session_state.pop(CODES_KEY, None)
        st.rerun()
elif me.mfa_enabled:
    st.markdown("🔒 MFA is **on**: signing in asks for a code from your authenticator app.")
    with st.expander("Turn MFA off"):
        with st.form("account.mfa_off", clear_on_submit=True):
            pw = st.text_input("Password", type="password", key="account.off_pw")
            code = st.text_input("Code from the app, or a recovery code", key="account.off_code")
            if st.form_submit_button("Turn MFA off"):
                shell.report(service.disable_mfa(user.id, password=pw, code=code)) and st.rerun()
elif pending := st.session_state.get(PENDING_KEY):
    left, right = st.columns([1, 2])
    left.image(qr_png(pending.uri), caption="Scan with your authenticator app", width=220)
    with right:
        st.markdown("Or enter this secret by hand:")
        st.code(pending.secret, language=None)
        with st.form("account.mfa_verify"):
            code = st.text_input("6-digit code from the app", max_chars=8, key="account.mfa_code")
            if st.form_submit_button("Verify and turn on", type="primary"):
                outcome = service.verify_mfa(user.id, code)
                if shell.report(outcome):
                    st.session_state.pop(PENDING_KEY, None)
                    st.session_state[CODES_KEY] = outcome.value
                    st.rerun()
        if st.button("Cancel", key="account.mfa_cancel"):
            st.session_state.pop(PENDING_KEY, None)
            st.rerun()
else:
    st.markdown("MFA is **off**. Turn it on to ask for a code from an app when you sign in.")
    if st.button("Set up MFA", key="account.mfa_start"):
        outcome = service.begin_mfa(user.id)
        if shell.report(outcome):
            st.session_state[PENDING_KEY] = outcome.value
            st.rerun()

st.markdown("#### Sessions")
st.caption(
    "Where your account is signed in: this browser, and the API and CLI (bearer tokens "
    "`ses_...`). This browser's session ends when you sign out or change your password."
)
live = service.sessions(user.id, shell.session_token())
if not [s for s in live if not s.current]:
    st.caption("No other signed-in sessions.")
for s in live:
    cols = st.columns([4, 3, 2, 1], vertical_alignment="center")
    cols[0].markdown(md(s.user_agent or "unknown client"))
    cols[1].caption(f"from {md(s.ip_address or '?')} · signed in {relative(s.created_at, now)}")
    cols[2].caption(f"last used {relative(s.last_seen_at, now)}")
    if s.current:
        cols[3].caption("this browser")
    elif cols[3].button("Revoke", key=f"account.revoke.{s.id}"):
        shell.report(service.revoke_session(user.id, s.id)) and st.rerun()

st.markdown("#### Notifications")
prefs = service.preferences(user.id)
with st.form("account.prefs"):
    changes: dict[str, dict[str, bool]] = {}
    for cause in service.CAUSES:
        row = st.columns([3, 1, 1])
        row[0].markdown(service.CAUSE_LABELS.get(cause, cause))
        changes[cause] = {
            "inApp": row[1].checkbox("In app", prefs[cause]["inApp"], key=f"account.{cause}.app"),
            "email": row[2].checkbox("E-mail", prefs[cause]["email"], key=f"account.{cause}.mail"),
        }
    if st.form_submit_button("Save preferences"):
        shell.report(service.update_preferences(user.id, changes)) and st.rerun()
st.caption("Some notices go to admins or owners only, whatever is chosen here.")

st.markdown("#### Appearance")
st.caption("Light or dark: ⋮ menu → Settings → Theme. The browser remembers your choice.")
