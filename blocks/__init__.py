"""Prefect Block families for integrations' credentials, one per file (a later issue adds
Slack, GitHub, Salesforce and Stripe)."""
