"""Workflow use cases that the API, dashboard and CLI call; the worker runtime is in runtime/."""
