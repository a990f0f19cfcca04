"""Organizations created by users: the database rows, then the organization's Prefect work pool
(``orbin-<slug>``) with the plan's concurrency limit, so it shows in the Prefect UI at once;
deleted by their owner: the rows closed, then the pool removed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prefect.client.orchestration import get_client

from deployments.prefect_setup import PrefectSetup
from tenancy.db import session_scope
from tenancy.identity import organizations as orgs
from tenancy.identity.sessions import read_user
from tenancy.orgs import code_pool_name, work_pool_name
from tenancy.principal import Principal

log = logging.getLogger("orbin.orgs")


async def ensure_pool(slug: str, concurrency: int) -> bool:
    """Create or update the pool; False when Prefect does not answer (the worker creates it
    on the organization's first run, with the same limit)."""
    try:
        async with get_client() as client:
            await PrefectSetup(client).ensure_work_pool(slug, concurrency)
        return True
    except Exception as exc:  # noqa: BLE001 - the organization exists either way
        log.warning("work pool for %s not created now (%s); the worker will create it", slug, exc)
        return False


async def create_organization(user_id: str, *, name: str, slug: str) -> dict[str, Any]:
    def _store() -> dict[str, Any]:
        with session_scope() as session:
            org = orgs.create_organization_for_user(
                session, read_user(session, user_id), name=name, slug=slug
            )
            return {
                "id": org.id,
                "slug": org.slug,
                "name": org.name,
                "plan": org.plan,
                "role": "owner",
                "createdAt": org.created_at,
                "concurrency": orgs.pool_concurrency(org),
            }

    answer = await asyncio.to_thread(_store)
    created = await ensure_pool(answer["slug"], answer.pop("concurrency"))
    answer["workPool"] = {"name": work_pool_name(answer["slug"]), "ready": created}
    return answer


async def delete_pool(slug: str) -> bool:
    """Remove the organization's work pool from Prefect; False when Prefect does not answer
    (the pool stays, empty: no workflow of the organization can start a run any more)."""
    from prefect.exceptions import ObjectNotFound

    try:
        async with get_client() as client:
            for name in (work_pool_name(slug), code_pool_name(slug)):  # its code pool too
                try:
                    await client.delete_work_pool(name)
                except ObjectNotFound:
                    pass
        return True
    except Exception as exc:  # noqa: BLE001 - the organization is deleted either way
        log.warning("work pool of deleted organization %s not removed now (%s)", slug, exc)
        return False


async def delete_organization(principal: Principal, *, confirm: str | None) -> dict[str, Any]:
    def _delete() -> str:
        with session_scope() as session:
            return orgs.delete_organization(session, principal, confirm).slug

    slug = await asyncio.to_thread(_delete)
    removed = await delete_pool(slug)
    return {
        "slug": slug,
        "deleted": True,
        "workPool": {"name": work_pool_name(slug), "deleted": removed},
    }
