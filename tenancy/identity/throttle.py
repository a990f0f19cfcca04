"""Sign-in attempts counted per e-mail and per client address (sliding windows, shared through
Redis when ``ORBIN_REDIS_URL`` is set), on top of the account lockout."""

from __future__ import annotations

import threading

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from tenancy.config import get_settings
from tenancy.errors import LimitExceeded

PER_EMAIL = RateLimitItemPerMinute(20)
PER_CLIENT = RateLimitItemPerMinute(60)
_limiter: MovingWindowRateLimiter | None = None
_lock = threading.Lock()


def _get() -> MovingWindowRateLimiter:
    global _limiter
    with _lock:
        if _limiter is None:
            url = get_settings().redis_url
            try:
                storage = storage_from_string(url if url else "memory://")
                if url:
                    storage.check()
            except Exception:  # noqa: BLE001 - Redis down: count in this process
                storage = storage_from_string("memory://")
            _limiter = MovingWindowRateLimiter(storage)
        return _limiter


def reset() -> None:
    global _limiter
    with _lock:
        _limiter = None


def check_sign_in(email: str, client: str | None) -> None:
    limiter = _get()
    checks = [(PER_EMAIL, "signin-email", email.strip().lower())]
    if client:
        checks.append((PER_CLIENT, "signin-client", client))
    for item, scope, ident in checks:
        try:
            allowed = limiter.hit(item, scope, ident)
        except Exception:  # noqa: BLE001 - never lock everyone out because the store failed
            allowed = True
        if not allowed:
            raise LimitExceeded(
                f"too many sign-in attempts for this {scope.split('-')[1]}: wait a minute",
                retry_after=60,
            )
