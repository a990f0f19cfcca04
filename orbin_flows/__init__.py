"""Workflows: the spec, its compiler to Prefect flows and tasks, step actions and the worker."""
