"""The one source of retry defaults: a step's policy when neither it nor its org sets one."""

from __future__ import annotations

from typing import Any

from tenancy.errors import InvalidInput

DEFAULT_RETRY_POLICY = {
    "maxAttempts": 3,
    "backoffCoefficient": 2,
    "initialInterval": 1000,
    "maxInterval": 60_000,
}

# What an organization's default policy may hold, each field's range.
RETRY_LIMITS = {
    "maxAttempts": (1, 20),
    "backoffCoefficient": (1, 10),
    "initialInterval": (0, 3_600_000),
    "maxInterval": (0, 86_400_000),
}


def check_retry_policy(policy: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """An organization's default retry policy, checked field by field (every field unless
    ``partial``); InvalidInput names the first bad one."""
    unknown = sorted(set(policy) - set(RETRY_LIMITS))
    if unknown:
        raise InvalidInput(
            f"defaultRetryPolicy has unknown fields: {', '.join(unknown)}; "
            f"allowed: {', '.join(RETRY_LIMITS)}",
            details=[{"field": "defaultRetryPolicy"}],
        )
    clean: dict[str, Any] = {}
    for name, (low, high) in RETRY_LIMITS.items():
        if partial and name not in policy:
            continue
        value = policy.get(name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise InvalidInput(
                f"defaultRetryPolicy.{name} must be a number from {low} to {high}",
                details=[{"field": f"defaultRetryPolicy.{name}"}],
            )
        clean[name] = int(value) if name != "backoffCoefficient" else float(value)
    if clean.get("maxInterval", 1) < clean.get("initialInterval", 0):
        raise InvalidInput("defaultRetryPolicy.maxInterval must not be below initialInterval")
    return clean
