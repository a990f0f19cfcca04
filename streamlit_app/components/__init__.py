"""Reusable pieces of the pages: status badges, formatting, the run timeline."""
