"""Sign in with the email and password of an organization member."""

import streamlit as st

from streamlit_app.data import sign_in
from tenancy.errors import Unauthenticated

st.title("Sign in to Orbin")
with st.form("login"):
    email = st.text_input("Email")
    password = st.text_input("Password", type="password")
    submitted = st.form_submit_button("Sign in")
if submitted:
    try:
        user_id, name, memberships = sign_in(email, password)
    except Unauthenticated as exc:
        st.error(exc.message)
    else:
        st.session_state["auth_user_id"] = user_id
        st.session_state["auth_user_name"] = name
        st.session_state["auth_memberships"] = memberships
        st.session_state["auth_org"] = memberships[0]
        st.rerun()
