"""Billing: the plan, this period's executions against its limit with the countdown to the
reset, the plans side by side with upgrade / downgrade through Stripe Checkout (owners), the
payment portal, invoices (admins), and executions per day."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from streamlit_app import shell
from streamlit_app.components.bars import day_bars_html
from streamlit_app.components.formatting import until
from streamlit_app.components.table import table_html
from streamlit_app.components.text import md
from streamlit_app.services import billing
from streamlit_app.services import org as org_service
from streamlit_app.services import overview as service
from tenancy.clock import now_ms

CHECKOUT_KEY = "billing.checkout"

org = shell.current_org()
actor = shell.actor()
owner = shell.may("owner")
stripe = billing.stripe_configured()
st.title("Billing")
back = st.query_params.get("checkout")
if back == "success":
    st.success("Payment done. The new plan applies as soon as Stripe confirms it (seconds).")
elif back == "canceled":
    st.info("Checkout canceled: the plan is unchanged.")

now = now_ms()
u = service.usage(org.organization_id)
c = st.columns(3)
c[0].metric("Plan", u.plan.title())
c[1].metric("Executions this period", f"{u.used:,}", help=f"of {u.limit:,}")
c[2].metric("Period resets", until(u.reset_at, now) if u.reset_at > now else "at the next run")
st.progress(min(u.ratio, 1.0), text=f"{u.ratio:.0%} of the plan's {u.limit:,} executions used")
if u.ratio >= 0.7:
    st.warning("Over 70 % of this period's executions are used. Upgrade to avoid refused runs.")

st.markdown("#### Plans")
plans = org_service.plans()
rank = {p.name: i for i, p in enumerate(plans)}
current = rank.get(u.plan, 0)
cols = st.columns(len(plans))
for col, plan in zip(cols, plans, strict=True):
    with col.container(border=True):
        st.markdown(f"**{plan.name.title()}**" + (" · current" if plan.name == u.plan else ""))
        st.caption(
            f"{plan.monthly_executions:,} executions a month · {plan.concurrency} at once · "
            f"{plan.requests_per_minute_per_key:,} requests/min per key · "
            f"{plan.retention_days} days of history"
        )
        if not (owner and stripe) or plan.name == u.plan:
            continue
        verb = "Upgrade" if rank[plan.name] > current else "Downgrade"
        if st.button(f"{verb} to {plan.name.title()}", key=f"billing.to.{plan.name}"):
            # The free plan is no subscription: leaving a paid one is a cancellation.
            go = (
                billing.portal(actor)
                if rank[plan.name] == 0
                else billing.checkout(actor, plan.name)
            )
            if shell.report(go):
                st.session_state[CHECKOUT_KEY] = (plan.name, go.value)

if pending := st.session_state.get(CHECKOUT_KEY):
    name, url = pending
    where = "the payment portal (cancel there)" if rank.get(name) == 0 else "Stripe Checkout"
    st.link_button(f"Continue to {where} for {name.title()} →", url, type="primary")

if not stripe:
    st.caption(
        "Stripe is not configured on this Orbin: the operator sets the plan "
        "(`orbin org set-plan`). Invoices and the payment portal appear once it is."
    )
elif not owner:
    st.caption("The owner changes the plan and the payment details.")
else:
    st.markdown("#### Payment details")
    if st.button("Open the payment portal", key="billing.portal"):
        got = billing.portal(actor)
        if shell.report(got):
            st.link_button("Continue to the payment portal →", got.value)
    st.caption("Cards, billing address, cancellation: on Stripe's portal.")

if stripe and shell.may("admin"):
    st.markdown("#### Invoices")
    listed = billing.invoices(actor)
    if not listed.ok:
        st.error(listed.message)
    elif not listed.value:
        st.caption("No invoices yet: the first comes with the first paid period.")
    else:
        st.html(
            table_html(
                [
                    {
                        "Number": i.number or i.id,
                        "Status": i.status or "",
                        "Amount": f"{(i.amount_due or 0) / 100:,.2f} {(i.currency or '').upper()}",
                        "Date": datetime.fromtimestamp((i.created or 0) / 1e3, UTC).strftime("%F"),
                    }
                    for i in listed.value
                ]
            )
        )
        for i in listed.value:
            if i.url:
                st.markdown(f"[Invoice {md(i.number or i.id)}]({i.url})")

st.markdown("#### Usage per day")
ov = service.overview(org.organization_id, now=now, days=30)
st.html(day_bars_html(ov.per_day))
