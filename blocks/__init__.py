"""Prefect Block families for integrations' credentials, one per file. ``BLOCK_TYPES`` maps an
Orbin provider to its block class (blocks/registry.py saves an organization's integrations as
block documents)."""
