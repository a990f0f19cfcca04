"""Billing use cases: Stripe Checkout, portal, invoices and webhooks; the worker's upkeep."""
