"""The worker's billing upkeep, every second from its maintenance loop (off every hot path):

- the Prefect work pool of every organization whose plan changed gets the plan's concurrency
  limit (``orbin-<slug>``), so Prefect enforces it for code flows too;
- usage notices at 70, 90 and 100 % (tenancy/metering.py), once per threshold and period;
- meter events of metered plans to Stripe, batched, retried with backoff.

The plan's retention is a Prefect-scheduled maintenance flow (orbin_flows/maintenance.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tenancy import billing as repo
from tenancy.db import session_scope
from tenancy.metering import send_due_notices
from tenancy.orgs import code_pool_name, work_pool_name

log = logging.getLogger("orbin.billing")

POOLS_EVERY_TICKS = 2
RECONCILE_EVERY_TICKS = 60
NOTICES_EVERY_TICKS = 2
METER_EVERY_TICKS = 5


async def write_pool_limit(
    client: Any, slug: str, concurrency: int, code_pool_type: str | None = None
) -> None:
    """Create or update the organization's pool (and its code pool, when it has one) with
    this concurrency limit."""
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    from deployments.prefect_setup import POOL_TYPE, ensure_code_pool

    if code_pool_type is not None:
        await ensure_code_pool(
            client, organization_slug=slug, pool_type=code_pool_type, concurrency=concurrency
        )

    name = work_pool_name(slug)
    try:
        await client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=concurrency))
    except ObjectNotFound:
        try:
            await client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type=POOL_TYPE,
                    description=f"Orbin organization {slug}",
                    concurrency_limit=concurrency,
                )
            )
        except ObjectAlreadyExists:
            await client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=concurrency))


def _read_targets(everything: bool) -> list[repo.PoolTarget]:
    with session_scope() as session:
        return repo.read_pools_to_sync(session, everything=everything)


def _mark(target: repo.PoolTarget) -> None:
    with session_scope() as session:
        repo.mark_pool_synced(session, target)


async def sync_pools(client: Any, *, everything: bool = False, setup: Any = None) -> int:
    """Write each plan's concurrency to its Prefect pool; returns how many were written."""
    done = 0
    for target in await asyncio.to_thread(_read_targets, everything):
        try:
            await write_pool_limit(client, target.slug, target.concurrency, target.code_pool_type)
        except Exception as exc:  # noqa: BLE001 - retried on the next pass
            log.warning("pool of %s not synced: %s", target.slug, exc)
            continue
        if setup is not None:  # the worker's cache of what the pools hold
            setup.remember_pool(work_pool_name(target.slug), target.concurrency)
        await asyncio.to_thread(_mark, target)
        done += 1
    return done


async def reconcile_pools(client: Any, *, setup: Any = None) -> int:
    """Compare what Prefect holds with the plans (one read per 200 pools) and fix what
    differs: a pool edited by hand, or written from a plan read just before a change."""
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    everyone = await asyncio.to_thread(_read_targets, True)
    targets = {work_pool_name(t.slug): t for t in everyone}
    targets |= {code_pool_name(t.slug): t for t in everyone if t.code_pool_type}
    names, fixed = list(targets), 0
    for i in range(0, len(names), 200):
        chunk = names[i : i + 200]
        pools = await client.read_work_pools(
            limit=len(chunk), work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=chunk))
        )
        for pool in pools:
            target = targets.get(pool.name)
            if target is not None and pool.concurrency_limit != target.concurrency:
                await write_pool_limit(
                    client, target.slug, target.concurrency, target.code_pool_type
                )
                if setup is not None and pool.name == work_pool_name(target.slug):
                    setup.remember_pool(pool.name, target.concurrency)
                fixed += 1
    return fixed


def sync_pools_blocking() -> int:
    """At ``orbin up``, before the API answers: every pool as its plan says."""
    from prefect.client.orchestration import get_client

    async def _run() -> int:
        async with get_client() as client:
            return await sync_pools(client, everything=True)

    return asyncio.run(_run())


def _notices() -> int:
    with session_scope() as session:
        return len(send_due_notices(session))


class BillingKeeper:
    def __init__(self, worker: Any) -> None:
        self.worker = worker

    async def tick(self, ticks: int) -> None:
        try:
            if ticks == 1 or ticks % POOLS_EVERY_TICKS == 0:
                if self.worker.client is not None:
                    await sync_pools(
                        self.worker.client, everything=ticks == 1, setup=self.worker.setup
                    )
            if ticks % RECONCILE_EVERY_TICKS == 0 and self.worker.client is not None:
                fixed = await reconcile_pools(self.worker.client, setup=self.worker.setup)
                if fixed:
                    log.info("%d work pool limit(s) put back to their plan's figure", fixed)
            if ticks % NOTICES_EVERY_TICKS == 0:
                sent = await asyncio.to_thread(_notices)
                if sent:
                    log.info("%d usage notice(s) sent", sent)
            if ticks % METER_EVERY_TICKS == 0:
                from orbin_flows.billing import meter

                await asyncio.to_thread(meter.report_due)
        except Exception:  # noqa: BLE001 - the next tick tries again
            log.exception("billing upkeep failed")


async def tick(worker: Any, ticks: int) -> None:
    keeper = getattr(worker, "_billing_keeper", None)
    if keeper is None:
        keeper = BillingKeeper(worker)
        worker._billing_keeper = keeper
    await keeper.tick(ticks)
