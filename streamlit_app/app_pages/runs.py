"""The organization's recent runs, refreshed every few seconds."""

import pandas as pd
import streamlit as st

from streamlit_app.data import recent_runs

org = st.session_state["auth_org"]
st.title("Runs")
st.caption(f"{org.name} · signed in as {st.session_state['auth_user_name']} ({org.role})")


@st.fragment(run_every=3)
def runs_table() -> None:
    rows = recent_runs(org.organization_id)
    if not rows:
        st.info("No runs yet. Send an event to start one.")
        return
    df = pd.DataFrame(rows)
    df["Created"] = pd.to_datetime(df["Created"], unit="ms", utc=True)
    st.dataframe(df, hide_index=True, use_container_width=True)


runs_table()
