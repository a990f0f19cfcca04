"""Domain errors. Adapters map each base class to one answer (HTTP status, CLI exit, page)."""

from __future__ import annotations

from typing import Any


class OrbinError(Exception):
    code = "error"

    def __init__(
        self, message: str, *, details: list[Any] | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        if code:
            self.code = code  # a finer code than the class's, e.g. "mfa_required"


class NotFound(OrbinError):
    code = "not_found"


class Conflict(OrbinError):
    code = "conflict"


class Unauthenticated(OrbinError):
    code = "unauthenticated"


class PermissionDenied(OrbinError):
    code = "permission_denied"


class Gone(OrbinError):
    """The thing existed but is used up or expired (an accepted invitation, an old link)."""

    code = "gone"


class InvalidInput(OrbinError):
    code = "invalid_input"


class TryLater(OrbinError):
    """A refusal that may pass later: ``retry_after`` seconds (the answer's Retry-After) and
    the other headers the answer carries (a rate limit's ``X-RateLimit-*``)."""

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


class LimitExceeded(TryLater):
    code = "limit_exceeded"


class ExecutionLimitReached(LimitExceeded):
    """The period's execution limit of the organization's plan (429)."""

    code = "execution_limit_reached"


class PlanLimitReached(OrbinError):
    """The plan caps this (members, integrations): 402, the answer names the limit."""

    code = "plan_limit_reached"


class Unavailable(TryLater):
    code = "unavailable"


class EgressRefused(PermissionDenied):
    """The egress policy refuses a connection a tenant caused (an internal address)."""

    code = "egress_refused"
