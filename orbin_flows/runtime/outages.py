"""Prefect outages: back off while the server is unreachable, retry the runs later."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from prefect.exceptions import PrefectHTTPStatusError

from orbin_flows.runtime.compiler import prepare_result_storage
from tenancy import outbox as outbox_repo

log = logging.getLogger("orbin.worker")

_TRANSIENT = (httpx.HTTPError, OSError, PrefectHTTPStatusError, TimeoutError)
# The Prefect server itself is unreachable (down, restarting): every run waits alike.
_UNREACHABLE = (httpx.TransportError, OSError, TimeoutError)
_CREATE_TIMEOUT = 15.0  # the client retries a refused connection for ~1 min on its own
_MAX_OUTAGE_BACKOFF = 10.0


class OutageMixin:
    """Part of ``Worker`` (orbin_flows/runtime/worker.py): see there for the state it uses."""

    async def _wait_for_prefect(self) -> Any:
        while True:
            try:
                return await prepare_result_storage()
            except _TRANSIENT as exc:
                log.warning("waiting for the Prefect server: %s", exc)
                await asyncio.sleep(1)

    def _prefect_unreachable(self) -> None:
        self.prefect_backoff = min(_MAX_OUTAGE_BACKOFF, max(0.5, self.prefect_backoff * 2))
        self.prefect_down_until = asyncio.get_running_loop().time() + self.prefect_backoff

    async def _prefect_answers(self) -> bool:
        url = self.settings.prefect_api_url.rstrip("/") + "/health"
        try:
            async with httpx.AsyncClient(timeout=3) as client:
                return (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    async def _prefect_unavailable(self, item: outbox_repo.ClaimedItem, exc: Exception) -> None:
        bound = self.settings.dispatch_max_attempts
        if item.attempts >= bound:  # transient for this long is not transient: dead letter
            log.warning("run %s not dispatched after %d attempts: %r", item.run_id, bound, exc)
            reason = RuntimeError(f"Prefect refused it {item.attempts} times; last: {exc!r}")
            await asyncio.to_thread(self._dead_letter, item, reason)
            return
        delay = min(30_000, 500 * 2 ** min(item.attempts, 6))
        log.warning("Prefect unavailable (%s); run %s waits %d ms", exc, item.run_id, delay)
        self.prefect_down_until = asyncio.get_running_loop().time() + 1.0
        await asyncio.to_thread(self._outbox_retry, item, repr(exc), delay)
