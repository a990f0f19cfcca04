"""The ``orbin`` command: run the platform, and operate it."""

from tenancy import prefect_auth as _prefect_auth

# Before Prefect is imported: a process started beside `orbin up` presents its auth string.
_prefect_auth.export_to_environment()
