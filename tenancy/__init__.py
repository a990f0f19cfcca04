"""Orbin's service layer: identity, organizations, keys, plans and the tenant-scoped data."""
