"""The engine's small parts: its exceptions, retry policies, delays and the step index."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from orbin_flows.actions.base import StepError
from orbin_flows.spec import RetryPolicy
from tenancy.clock import now_ms

log = logging.getLogger("orbin.engine")


class StepFailed(Exception):
    def __init__(self, step_id: str, message: str, stack: str | None, timed_out: bool) -> None:
        super().__init__(message)
        self.step_id = step_id
        self.message = message
        self.stack = stack
        self.timed_out = timed_out


class Suspend(Exception):
    """A long delay: the run leaves the worker and comes back at ``resume_at``."""

    def __init__(self, resume_at: int, key: str) -> None:
        super().__init__(f"suspended until {resume_at}")
        self.resume_at = resume_at
        self.key = key


def _step_end(why: str) -> str:
    """The status of a step stopped from outside: ``canceled`` when its run was."""
    return "canceled" if why == "canceled" else "failed"


def retry_policy(step: dict[str, Any], default: dict[str, Any]) -> RetryPolicy:
    """The step's own policy, else the organization's default (actions only), else none."""
    if step.get("retryPolicy"):
        return RetryPolicy.model_validate(step["retryPolicy"])
    if step.get("type") == "action" and default:
        return RetryPolicy.model_validate(default)
    return RetryPolicy(maxAttempts=1)


def _error(exc: BaseException, where: str = "run") -> dict[str, Any]:
    """A failure as the tenant sees it: Orbin's message, and the frames of the user's own
    code when there are any (a python step's, from its sandbox). The platform's traceback
    never leaves the worker: it goes to the worker log, for operators."""
    expected = isinstance(exc, StepError)
    log.log(
        logging.INFO if expected else logging.WARNING,
        "%s failed: %s",
        where,
        str(exc) or exc.__class__.__name__,
        exc_info=exc,
    )
    error: dict[str, Any] = {"message": str(exc) or exc.__class__.__name__}
    stack = exc.stack if expected else None
    if stack:
        error["stack"] = stack[-8000:]
    return error


def delay_seconds(config: dict[str, Any]) -> float:
    """Seconds to wait for a rendered delay config (``seconds``, or ``until`` an ISO time)."""
    if config.get("seconds") is not None:
        return max(0.0, float(config["seconds"]))
    until = datetime.fromisoformat(str(config.get("until")).replace("Z", "+00:00"))
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return max(0.0, until.timestamp() - now_ms() / 1000)


def step_index(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step of a spec by id, nested steps included."""
    out: dict[str, dict[str, Any]] = {}

    def walk(steps: list[dict[str, Any]]) -> None:
        for s in steps:
            out[s["id"]] = s
            cfg = s.get("config") or {}
            if s.get("type") == "condition":
                walk(cfg.get("then") or [])
                walk(cfg.get("else") or [])
            elif s.get("type") == "loop":
                walk(cfg.get("steps") or [])

    walk(spec.get("steps", []))
    return out
