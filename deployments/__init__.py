"""Prefect bootstrap: one work pool per organization, one deployment per workflow."""
