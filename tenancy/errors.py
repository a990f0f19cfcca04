"""Domain errors. Adapters map each base class to one answer (HTTP status, CLI exit, page)."""

from __future__ import annotations

from typing import Any


class OrbinError(Exception):
    code = "error"

    def __init__(self, message: str, *, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class NotFound(OrbinError):
    code = "not_found"


class Conflict(OrbinError):
    code = "conflict"


class Unauthenticated(OrbinError):
    code = "unauthenticated"


class PermissionDenied(OrbinError):
    code = "permission_denied"


class InvalidInput(OrbinError):
    code = "invalid_input"


class LimitExceeded(OrbinError):
    code = "limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        details: list[Any] | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after
        self.headers = headers or {}


class Unavailable(OrbinError):
    code = "unavailable"
