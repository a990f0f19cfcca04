"""Sign in with the email and password of an organization member.

Behind the server's gate visitors sign in on its /signin page instead; this page serves a bare
``streamlit run router.py``.
"""

import streamlit as st

from streamlit_app import accounts, shell
from tenancy.errors import Unauthenticated

st.title("Sign in to Orbin")
with st.form("login.form", clear_on_submit=True):
    email = st.text_input("Email", key="login.email")
    password = st.text_input("Password", type="password", key="login.password")
    submitted = st.form_submit_button("Sign in")
if submitted:
    try:
        user = accounts.sign_in(email, password)
    except Unauthenticated:
        st.error("Wrong email or password.")
    else:
        shell.remember_sign_in(user)
        st.rerun()
