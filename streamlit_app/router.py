"""Orbin's dashboard: sign in first, then the pages of the chosen organization.

Streamlit runs this script for every session; ``streamlit_app.py`` serves it behind the
sign-in gate. Nothing below the sign-in check runs for a visitor who has not signed in.
"""

import streamlit as st

from streamlit_app import accounts, shell
from streamlit_app.components.theme import DASHBOARD_CSS
from streamlit_app.server import SIGNIN_PATH

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

memberships = accounts.read_memberships(user.id)
if not memberships:
    st.error("This account belongs to no organization.")
    st.stop()

org = shell.choose_org(memberships)
page = st.navigation(
    {
        org.name: [
            st.Page("app_pages/runs.py", title="Runs", url_path="runs", default=True),
            st.Page("app_pages/run_detail.py", title="Run", url_path="run", visibility="hidden"),
        ]
    }
)
shell.user_menu(user, org)
st.html(DASHBOARD_CSS)
page.run()
