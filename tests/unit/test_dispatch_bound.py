"""Dispatch errors Prefect answers (treated as transient) are bounded: retried with backoff
up to ORBIN_DISPATCH_MAX_ATTEMPTS, then the run fails and its event is dead-lettered with
the reason, instead of being retried forever."""

from __future__ import annotations

import pytest

from orbin_flows.runtime.worker import Worker
from tenancy import config
from tenancy import outbox as runs_repo


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ORBIN_DISPATCH_MAX_ATTEMPTS", "3")
    config.reset_settings()
    yield Worker(worker_id="w-test")
    config.reset_settings()


async def test_retried_with_backoff_then_dead_lettered(worker, monkeypatch) -> None:
    retries: list[int] = []
    dead: list[str] = []
    monkeypatch.setattr(worker, "_outbox_retry", lambda item, error, delay: retries.append(delay))
    monkeypatch.setattr(worker, "_dead_letter", lambda item, exc: dead.append(str(exc)))
    error = RuntimeError("422 Unprocessable Entity")
    for attempts in (1, 2):
        await worker._prefect_unavailable(runs_repo.ClaimedItem(1, "r", "o", attempts), error)
    assert retries == [1000, 2000] and not dead
    await worker._prefect_unavailable(runs_repo.ClaimedItem(1, "r", "o", 3), error)
    assert retries == [1000, 2000]
    assert len(dead) == 1 and "3 times" in dead[0] and "422" in dead[0]
