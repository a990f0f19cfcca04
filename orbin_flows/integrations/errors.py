"""How a provider call failed, in the terms a step and a connection test need."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider refused or failed a call. ``message`` is the provider's own words.

    ``credential``: the credential itself was refused (bad, revoked or expired token): the
    integration goes into ``error`` at once. ``retryable``: the same call may pass later
    (5xx, rate limit, network); ``retry_after`` is the provider's own wait, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        credential: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.credential = credential
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
