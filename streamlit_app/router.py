"""Orbin's dashboard: sign in first, then the pages of the chosen organization.

Streamlit runs this script for every session; ``streamlit_app.py`` serves it behind the
sign-in gate. Nothing below the sign-in check runs for a visitor who has not signed in.
"""

import streamlit as st

from streamlit_app import accounts, shell
from streamlit_app.components.theme import DASHBOARD_CSS
from streamlit_app.server import MFA_SETUP_PATH, SIGNIN_PATH

st.set_page_config(page_title="Orbin", layout="wide")
st.session_state.pop(shell.MEMBERSHIP_KEY, None)

user = shell.signed_in_user()
if user is None:
    if shell.has_session_cookie():
        st.warning("Your session has ended. Please sign in again.")
        st.markdown(f'<a href="{SIGNIN_PATH}" target="_self">Sign in</a>', unsafe_allow_html=True)
    else:
        st.navigation([st.Page("app_pages/login.py", title="Sign in")], position="hidden").run()
    st.stop()

memberships = accounts.usable_memberships(user)
if not memberships:
    st.error("This account belongs to no organization.")
    st.stop()

org = shell.choose_org(memberships)
if org.refusal:  # e.g. the organization requires MFA and this account has none yet
    st.error(org.refusal.replace("(POST /v1/auth/mfa/enroll)", "").strip())
    st.markdown(
        f'<a href="{MFA_SETUP_PATH}" target="_self">Set up two-factor authentication</a>',
        unsafe_allow_html=True,
    )
    st.stop()


def page(file: str, title: str, path: str, **kw: object) -> st.Page:
    return st.Page(f"app_pages/{file}.py", title=title, url_path=path, **kw)


page_run = page("run_detail", "Run", "run", visibility="hidden")
nav = st.navigation(
    {
        org.name: [
            page("overview", "Overview", "overview", default=True),
            page("workflows", "Workflows", "workflows"),
            page("editor", "Editor", "editor"),
            page("runs", "Runs", "runs"),
            page_run,
            page("events", "Events", "events"),
            page("integrations", "Integrations", "integrations"),
        ],
        "Organization": [
            page("settings", "Settings", "settings"),
            page("members", "Members", "members"),
            page("api_keys", "API keys", "api-keys"),
            page("billing", "Billing", "billing"),
            page("audit", "Audit log", "audit"),
        ],
        "You": [page("account", "Account", "account")],
    }
)
shell.user_menu(user, org)
st.html(DASHBOARD_CSS)
shell.flash()
nav.run()
