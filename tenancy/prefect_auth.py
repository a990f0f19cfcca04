"""The Prefect server Orbin starts requires HTTP basic auth (``PREFECT_SERVER_API_AUTH_STRING``):
the operator's own ``user:password`` when set, else one generated on first start and kept in
``$ORBIN_HOME/prefect-auth-string`` (mode 0600). Orbin's processes present it as
``PREFECT_API_AUTH_STRING`` (the Prefect client's setting) and in ``headers()`` for the few
plain HTTP calls; a step cannot reach the server anyway (egress policy, sandbox)."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from tenancy.config import get_settings

FILE_NAME = "prefect-auth-string"


def path() -> Path:
    return get_settings().resolved_home / FILE_NAME


def ensure() -> tuple[str, bool]:
    """The auth string, and whether it was generated just now (to print it once)."""
    operator = os.environ.get("PREFECT_SERVER_API_AUTH_STRING")
    if operator:
        return operator, False
    existing = current()
    if existing:
        return existing, False
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True)
    value = f"orbin:{secrets.token_urlsafe(24)}"
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return current() or value, False
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value, True


def current() -> str | None:
    """What this process presents to Prefect: the environment's, else the file's."""
    value = os.environ.get("PREFECT_API_AUTH_STRING")
    if value:
        return value
    try:
        return path().read_text().strip() or None
    except OSError:
        return None


def headers() -> dict[str, str]:
    """``Authorization`` for a plain HTTP call to Prefect (none when there is no string)."""
    value = current()
    if not value:
        return {}
    return {"authorization": "Basic " + base64.b64encode(value.encode()).decode()}


def export_to_environment() -> None:
    """For a process started on its own (``orbin worker`` / ``orbin api`` beside ``orbin up``,
    with the same ORBIN_HOME): present the file's auth string to the Prefect client. Call
    before Prefect is imported (it reads its settings then)."""
    if os.environ.get("PREFECT_API_AUTH_STRING"):
        return
    from tenancy.config import Settings

    try:
        home = Settings().resolved_home
        value = (home / FILE_NAME).read_text().strip()
    except (OSError, ValueError):
        return
    if value:
        os.environ["PREFECT_API_AUTH_STRING"] = value
