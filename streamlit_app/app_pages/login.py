"""Sign in with the email and password of an organization member (and the MFA code when the
account uses it): identity's sign-in, as on the server's /signin page.

Behind the server's gate visitors sign in on its /signin page instead; this page serves a bare
``streamlit run router.py``.
"""

import streamlit as st

from streamlit_app import accounts, shell
from tenancy.errors import LimitExceeded, Unauthenticated

TICKET_KEY = "login.mfa_ticket"

st.title("Sign in to Orbin")
ticket = st.session_state.get(TICKET_KEY)
if ticket is None:
    with st.form("login.form", clear_on_submit=True):
        email = st.text_input("Email", key="login.email")
        password = st.text_input("Password", type="password", key="login.password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            token = accounts.sign_in(email, password, ip=None, user_agent="dashboard")
        except accounts.MfaRequired as exc:
            st.session_state[TICKET_KEY] = exc.ticket
            st.rerun()
        except LimitExceeded:
            st.error("Too many attempts. Wait a minute and try again.")
        except Unauthenticated as exc:
            locked = exc.code == "account_locked"
            st.error(exc.message if locked else "Wrong email or password.")
        else:
            shell.remember_sign_in(token)
            st.rerun()
else:
    st.caption("Enter the 6-digit code from your authenticator app, or a recovery code.")
    with st.form("login.mfa_form", clear_on_submit=True):
        code = st.text_input("Authentication code", key="login.code")
        submitted = st.form_submit_button("Verify")
    if submitted:
        try:
            token = accounts.complete_mfa(ticket, code, ip=None, user_agent="dashboard")
        except LimitExceeded:
            st.error("Too many attempts. Wait a minute and try again.")
        except Unauthenticated as exc:
            if exc.code != "mfa_invalid":
                st.session_state.pop(TICKET_KEY, None)
            st.error("That code is not valid." if exc.code == "mfa_invalid" else exc.message)
        else:
            st.session_state.pop(TICKET_KEY, None)
            shell.remember_sign_in(token)
            st.rerun()
