"""Work pools and deployments on the Prefect server, created on demand and cached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from tenancy.orgs import code_pool_name, work_pool_name

POOL_TYPE = "process"
ENTRYPOINT = "orbin_flows/runtime/entry.py:orbin_workflow"


@dataclass(frozen=True)
class DeploymentTarget:
    deployment_id: UUID
    flow_id: UUID
    work_pool_name: str


class PrefectSetup:
    """Remembers what exists, so a warm worker calls the server once per pool and workflow."""

    def __init__(self, client: PrefectClient) -> None:
        self.client = client
        self._pools: dict[str, int | None] = {}
        self._flows: dict[str, UUID] = {}
        self._deployments: dict[tuple[str, int], DeploymentTarget] = {}

    def remember_pool(self, name: str, concurrency: int | None) -> None:
        """The pool was given this limit elsewhere (the billing upkeep): no call to repeat it."""
        self._pools[name] = concurrency

    @property
    def pools(self) -> list[str]:
        """The work pools this process has ensured so far."""
        return list(self._pools)

    async def ensure_work_pool(self, organization_slug: str, concurrency: int | None) -> str:
        name = work_pool_name(organization_slug)
        if self._pools.get(name, -1) == concurrency:
            return name
        try:
            await self.client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type=POOL_TYPE,
                    description=f"Orbin organization {organization_slug}",
                    concurrency_limit=concurrency,
                )
            )
        except ObjectAlreadyExists:
            await self.client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=concurrency))
        self._pools[name] = concurrency
        return name

    async def ensure_flow(self, name: str) -> UUID:
        flow_id = self._flows.get(name)
        if flow_id is None:
            from prefect import Flow

            async def _placeholder(run_id: str) -> None:  # only its name is sent
                return None

            flow_id = await self.client.create_flow(Flow(fn=_placeholder, name=name))
            self._flows[name] = flow_id
        return flow_id

    async def ensure_deployment(
        self,
        *,
        organization_slug: str,
        workflow_slug: str,
        workflow_id: str,
        version: int,
        concurrency: int | None,
        flow_name: str,
        schedules: list[Any] | None = None,
        paused: bool = False,
    ) -> DeploymentTarget:
        """The workflow's deployment, created if missing. One that carries schedules is left
        as it is: re-creating it would drop its schedules and the runs they scheduled (its
        schedules are kept in step by ``sync_deployment`` instead)."""
        cache_key = (workflow_id, version)
        target = self._deployments.get(cache_key)
        if target is not None:
            return target
        try:
            existing = await self.client.read_deployment_by_name(f"{flow_name}/{workflow_slug}")
        except ObjectNotFound:
            existing = None
        if (
            existing is not None
            and existing.work_pool_name
            and (existing.schedules or existing.version == str(version))
        ):
            target = DeploymentTarget(existing.id, existing.flow_id, existing.work_pool_name)
            self._deployments[cache_key] = target
            return target
        return await self.sync_deployment(
            organization_slug=organization_slug,
            workflow_slug=workflow_slug,
            workflow_id=workflow_id,
            version=version,
            concurrency=concurrency,
            flow_name=flow_name,
            schedules=schedules,
            paused=paused,
        )

    async def sync_deployment(
        self,
        *,
        organization_slug: str,
        workflow_slug: str,
        workflow_id: str,
        version: int,
        concurrency: int | None,
        flow_name: str,
        schedules: list[Any] | None = None,
        paused: bool = False,
    ) -> DeploymentTarget:
        """Create or update (upsert by flow and name) the deployment, with these schedules."""
        pool = await self.ensure_work_pool(organization_slug, concurrency)
        flow_id = await self.ensure_flow(flow_name)
        deployment_id = await self.client.create_deployment(
            flow_id=flow_id,
            name=workflow_slug,
            version=str(version),
            work_pool_name=pool,
            entrypoint=ENTRYPOINT,
            parameters={},
            parameter_openapi_schema={
                "type": "object",
                "properties": {"run_id": {"type": "string", "title": "Orbin run id"}},
            },
            tags=["orbin", f"org:{organization_slug}", f"workflow:{workflow_slug}"],
            description=f"Orbin workflow {workflow_slug} ({workflow_id}) v{version}",
            enforce_parameter_schema=False,
            schedules=schedules,
            paused=paused,
        )
        target = DeploymentTarget(deployment_id, flow_id, pool)
        self._deployments[(workflow_id, version)] = target
        return target

    def forget(self) -> None:
        self._pools.clear()
        self._flows.clear()
        self._deployments.clear()


class CodePoolError(Exception):
    """The code pool cannot be made as asked (no worker of that type installed, or a pool of
    another type holds the name)."""


def base_job_template(pool_type: str) -> dict[str, Any]:
    """The default base job template of the Prefect worker of this type (prefect-kubernetes for
    ``kubernetes``, prefect-aws for ``ecs``): what ``prefect work-pool create --type`` sends."""
    from prefect.workers.base import BaseWorker

    worker = BaseWorker.get_worker_class_from_type(pool_type)
    if worker is None:
        raise CodePoolError(f"no Prefect worker of type {pool_type!r} is installed here")
    return worker.get_default_base_job_template()


async def ensure_code_pool(
    client: PrefectClient, *, organization_slug: str, pool_type: str, concurrency: int | None
) -> str:
    """The organization's code pool (``orbin-<slug>_code``) of this type, with the plan's
    concurrency limit; created with its worker type's default job template."""
    name = code_pool_name(organization_slug)
    try:
        pool = await client.read_work_pool(name)
    except ObjectNotFound:
        try:
            await client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type=pool_type,
                    base_job_template=base_job_template(pool_type),
                    description=f"Code flows of Orbin organization {organization_slug}",
                    concurrency_limit=concurrency,
                )
            )
            return name
        except ObjectAlreadyExists:
            pool = await client.read_work_pool(name)
    if pool.type != pool_type:
        raise CodePoolError(f"work pool {name!r} exists with type {pool.type!r}, not {pool_type!r}")
    if pool.concurrency_limit != concurrency:
        await client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=concurrency))
    return name


async def delete_deployment_quietly(client: PrefectClient, deployment_id: UUID) -> None:
    try:
        await client.delete_deployment(deployment_id)
    except ObjectNotFound:
        pass
