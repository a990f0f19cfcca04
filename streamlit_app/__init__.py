"""The org-scoped dashboard (Streamlit)."""
