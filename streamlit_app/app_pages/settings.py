"""Settings (general): the organization's name, slug, billing e-mail, default retry policy,
alert e-mails, whether members must use MFA, and the webhook signing secret's rotation.
Admins and owners change them; everyone else reads them."""

from __future__ import annotations

import streamlit as st

from streamlit_app import shell
from streamlit_app.services import org as service

org = shell.current_org()
st.title("Settings")
s = service.settings(org.organization_id)
admin = shell.may("admin")
if not admin:
    st.caption("Only admins and owners change the organization's settings.")

with st.form("settings.general"):
    name = st.text_input("Name", s.name, disabled=not admin)
    st.text_input(
        "Slug",
        s.slug,
        disabled=True,
        help="Names the organization's Prefect work pool: it does not change.",
    )
    billing = st.text_input("Billing e-mail", s.billing_email or "", disabled=not admin)
    st.markdown("**Default retry policy** (steps without their own)")
    p = s.default_retry_policy
    c = st.columns(4)
    attempts = c[0].number_input(
        "Max attempts", 1, 20, int(p.get("maxAttempts", 3)), disabled=not admin
    )
    backoff = c[1].number_input(
        "Backoff ×", 1.0, 10.0, float(p.get("backoffCoefficient", 2)), disabled=not admin
    )
    initial = c[2].number_input(
        "First wait (ms)", 0, 3_600_000, int(p.get("initialInterval", 1000)), disabled=not admin
    )
    longest = c[3].number_input(
        "Longest wait (ms)", 0, 86_400_000, int(p.get("maxInterval", 60_000)), disabled=not admin
    )
    alerts = st.text_area(
        "Alert e-mails (one a line)", "\n".join(s.alert_emails), disabled=not admin
    )
    mfa = st.toggle("Require MFA for every member", s.require_mfa, disabled=not admin)
    if st.form_submit_button("Save settings", disabled=not admin, type="primary"):
        outcome = service.update_settings(
            shell.actor(),
            name=name,
            billing_email=billing.strip() or None,
            default_retry_policy={
                "maxAttempts": attempts,
                "backoffCoefficient": backoff,
                "initialInterval": initial,
                "maxInterval": longest,
            },
            alert_emails=[e for e in alerts.splitlines() if e.strip()],
            require_mfa=mfa,
        )
        shell.report(outcome) and st.rerun()

st.markdown("#### Webhook signing secret")
st.caption(
    "Every workflow's webhook secret derives from this root secret; rotating it rotates them all."
)
if admin:
    grace = st.selectbox(
        "Old secret keeps working for",
        [0, 1, 24, 72],
        index=2,
        format_func=lambda h: f"{h} h",
        key="settings.grace",
    )
    if st.button("Rotate the webhook secret", key="settings.rotate"):
        outcome = service.rotate_webhook_secret(shell.actor(), grace)
        if shell.report(outcome):
            st.warning("The new root secret, shown once:")
            st.code(outcome.value[0], language=None)
