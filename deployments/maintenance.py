"""The maintenance deployments on the Prefect server: one per housekeeping flow
(orbin_flows/maintenance.py), in the ``orbin_maintenance`` pool, on an interval schedule.

Every worker ensures them at start; one that already matches is left as it is (re-creating a
deployment would drop the runs its schedule made). The pool's name has an underscore, which
no organization's pool (``orbin-<slug>``) can have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

MAINTENANCE_POOL = "orbin_maintenance"
DEPLOYMENT_NAME = "maintenance"
MAINTENANCE_TAG = "orbin-maintenance"  # not "orbin": the schedule keeper takes those
ANCHOR = datetime(2020, 1, 1, tzinfo=UTC)  # slots on round times, whoever made the schedule


@dataclass(frozen=True)
class MaintenanceSpec:
    flow_name: str
    entrypoint: str
    description: str
    every_seconds: int


def _matches(deployment: Any, spec: MaintenanceSpec) -> bool:
    schedules = deployment.schedules or []
    return (
        deployment.work_pool_name == MAINTENANCE_POOL
        and deployment.entrypoint == spec.entrypoint
        and not deployment.paused
        and len(schedules) == 1
        and schedules[0].active
        and getattr(schedules[0].schedule, "interval", None)
        == timedelta(seconds=spec.every_seconds)
    )


async def ensure_maintenance_pool(client: PrefectClient) -> None:
    try:
        await client.create_work_pool(
            WorkPoolCreate(
                name=MAINTENANCE_POOL,
                type="process",
                description="Orbin housekeeping: retention, change log, outbox (run by the "
                "Orbin workers)",
            )
        )
    except ObjectAlreadyExists:
        pass


async def ensure_maintenance_deployments(
    client: PrefectClient, specs: list[MaintenanceSpec]
) -> dict[str, UUID]:
    """Deployment id by flow name, each created or corrected to its spec."""
    await ensure_maintenance_pool(client)
    ids: dict[str, UUID] = {}
    for spec in specs:
        try:
            existing = await client.read_deployment_by_name(f"{spec.flow_name}/{DEPLOYMENT_NAME}")
        except ObjectNotFound:
            existing = None
        if existing is not None and _matches(existing, spec):
            ids[spec.flow_name] = existing.id
            continue
        flow_id = await client.create_flow_from_name(spec.flow_name)
        deployment_id = await client.create_deployment(
            flow_id=flow_id,
            name=DEPLOYMENT_NAME,
            work_pool_name=MAINTENANCE_POOL,
            entrypoint=spec.entrypoint,
            parameters={},
            tags=[MAINTENANCE_TAG],
            description=spec.description,
            schedules=[
                DeploymentScheduleCreate(
                    schedule=IntervalSchedule(
                        interval=timedelta(seconds=spec.every_seconds), anchor_date=ANCHOR
                    ),
                    active=True,
                )
            ],
            paused=False,
        )
        # The first runs now, not at the scheduler's next pass.
        await client.request(
            "POST", "/deployments/{id}/schedule", path_params={"id": deployment_id}, json={}
        )
        ids[spec.flow_name] = deployment_id
    return ids
