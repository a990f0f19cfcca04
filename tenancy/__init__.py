"""Orbin's data layer and service core: every model and every query, one noun per module."""
