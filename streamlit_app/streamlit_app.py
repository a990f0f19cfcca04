"""Orbin's dashboard: a router over the pages in app_pages/."""

import streamlit as st

st.set_page_config(page_title="Orbin", layout="wide")

if "auth_user_id" not in st.session_state:
    page = st.navigation([st.Page("app_pages/login.py", title="Sign in")], position="hidden")
else:
    page = st.navigation({"Orbin": [st.Page("app_pages/runs.py", title="Runs", default=True)]})
page.run()
