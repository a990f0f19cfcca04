"""The worker's way out, and its health: stop claiming, let runs finish, hand over the rest.

On SIGTERM a worker stops claiming (its dispatch and LISTEN loops end) but keeps renewing
its leases while its runs go on, up to ``ORBIN_WORKER_SHUTDOWN_SECONDS``. Runs still going
then are stopped here without being recorded as canceled and requeued at once
(``tenancy.handover``): another worker claims each, skips its completed steps and runs the
rest, instead of waiting for this worker's lease to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from telemetry import metrics, tracing
from telemetry.server import OpsServer
from telemetry.settings import get_telemetry_settings
from tenancy.db import session_scope
from tenancy.handover import hand_over_runs
from tenancy.outbox_stats import outbox_probe

if TYPE_CHECKING:
    from orbin_flows.runtime.worker import Worker

log = logging.getLogger("orbin.worker")


async def drain(worker: Worker, loops: list[asyncio.Task[Any]]) -> None:
    metrics.SHUTTING_DOWN.set(1)
    upkeep = [t for t in loops if t.get_name() == "maintenance"]
    for t in loops:
        if t not in upkeep:
            t.cancel()
    deadline = worker.settings.worker_shutdown_seconds
    if worker.active:
        log.info("stopping: %d runs in flight, waiting up to %.0f s", len(worker.active), deadline)
        await asyncio.wait(list(worker.active.values()), timeout=deadline)
    left = [rid for rid, t in worker.active.items() if not t.done()]
    if left:
        worker.handing_over.update(left)
        for run_id in left:
            executor = worker.executors.get(run_id)
            if executor is not None:
                executor.lost = True  # stopped here, not canceled: recorded as such
            worker.active[run_id].cancel()
        await asyncio.wait([worker.active[r] for r in left if r in worker.active], timeout=5)
        moved = await asyncio.to_thread(_hand_over, worker.worker_id, left)
        log.warning("stopping: handed %d runs over to other workers", len(moved))
    for t in upkeep:
        t.cancel()
    await asyncio.gather(*loops, return_exceptions=True)


def _hand_over(worker_id: str, run_ids: list[str]) -> list[str]:
    with session_scope() as session:
        return hand_over_runs(session, worker_id=worker_id, run_ids=run_ids)


def keep_sigterm() -> None:
    """The worker owns SIGTERM (drain, then hand over). Prefect's engine would replace its
    handler for as long as a flow runs in the main thread with one that crashes the flow run
    at once (``capture_sigterm``), and start a control listener per run; Orbin's runs are
    cancelled through Orbin, so neither is wanted here."""
    import prefect.flow_engine

    prefect.flow_engine.capture_sigterm = contextlib.nullcontext  # type: ignore[assignment]


def start_ops_server(worker: Worker) -> OpsServer | None:
    """``/metrics``, ``/livez``, ``/readyz`` on ``ORBIN_WORKER_METRICS_PORT`` (when set)."""
    keep_sigterm()
    metrics.set_outbox_probe(outbox_probe)
    tracing.setup_tracing("orbin-worker")
    settings = get_telemetry_settings()
    if not settings.worker_metrics_port:
        return None
    loop = asyncio.get_running_loop()
    beat = {"at": time.monotonic()}

    def tick() -> None:
        beat["at"] = time.monotonic()
        if not worker.stopping.is_set():
            loop.call_later(1.0, tick)

    tick()

    def health() -> tuple[bool, bool, dict[str, Any]]:
        stalled = time.monotonic() - beat["at"]
        alive = stalled < 30 or worker.stopping.is_set()
        checks = {
            "eventLoop": "ok" if stalled < 5 else f"stalled {stalled:.0f} s",
            "prefect": "ok" if not worker.prefect_backoff else "unreachable",
            "process": "stopping" if worker.stopping.is_set() else "ok",
            "activeRuns": len(worker.active),
        }
        ready = all(v == "ok" for k, v in checks.items() if k != "activeRuns")
        return alive, ready, checks

    return OpsServer(settings.worker_metrics_host, settings.worker_metrics_port, health).start()
