"""A run's artifacts, as the API and the dashboard show them: the Prefect artifacts of its
flow run (the summary and step table a worker writes, see runtime/run_artifacts.py) with
the step outputs stored out of line (results.py), and any one step's output on demand.

Every read goes through the run, scoped to the caller's organization: another
organization's run is NotFound, and so are its outputs and artifacts.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from orbin_flows import results
from tenancy import runs as runs_repo
from tenancy import steps as steps_repo
from tenancy.db import Session
from tenancy.errors import NotFound

log = logging.getLogger("orbin.artifacts")
PREFECT_BUDGET = 3.0  # seconds


@dataclass(frozen=True)
class RunArtifact:
    id: str
    kind: str  # "markdown" | "table" | ... (Prefect's artifact type) | "output"
    created_at: int
    description: str | None = None
    data: Any = None  # a Prefect artifact's content
    step_id: str | None = None  # an output's step, and its reference
    storage: str | None = None
    key: str | None = None
    bytes: int | None = None
    prefect_flow_run_id: str | None = None


@dataclass(frozen=True)
class RunArtifacts:
    items: list[RunArtifact]
    prefect_error: str | None  # Prefect did not answer: its artifacts are missing here


def _ms(when: Any) -> int:
    return int(when.timestamp() * 1000)


def prefect_artifacts(flow_run_id: str) -> list[RunArtifact]:
    """The flow run's artifacts, read from the Prefect server (oldest first)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.client.schemas.sorting import ArtifactSort
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    # A request waits on this: one try, a short budget (a stopped server accepts and hangs).
    with (
        temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}),
        get_client(sync_client=True, httpx_settings={"timeout": PREFECT_BUDGET}) as client,
    ):
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(flow_run_id)])
            ),
            sort=ArtifactSort.ID_DESC,
            limit=200,
        )
    return sorted(
        (
            RunArtifact(
                id=str(a.id),
                kind=a.type or "artifact",
                created_at=_ms(a.created),
                description=a.description,
                data=a.data,
                prefect_flow_run_id=flow_run_id,
            )
            for a in found
        ),
        key=lambda a: a.created_at,
    )


def read_run_artifacts(session: Session, *, organization_id: str, run_id: str) -> RunArtifacts:
    run = runs_repo.read_run(session, organization_id=organization_id, run_id=run_id)
    attempts = steps_repo.read_step_executions(
        session, organization_id=organization_id, run_id=run.id
    )
    items: list[RunArtifact] = []
    for a in attempts:
        ref = results.ref_of(a.output)
        if ref is None:
            continue
        items.append(
            RunArtifact(
                id=a.id,
                kind="output",
                created_at=a.completed_at or a.created_at,
                description=f"output of step {a.step_id} (attempt {a.attempt})",
                step_id=a.step_id,
                storage=ref.storage,
                key=ref.key,
                bytes=ref.bytes,
            )
        )
    error = None
    from prefect.settings import PREFECT_API_URL

    if run.prefect_flow_run_id and not PREFECT_API_URL.value():
        error = "no Prefect server is configured (PREFECT_API_URL)"
    elif run.prefect_flow_run_id:
        try:
            items = prefect_artifacts(run.prefect_flow_run_id) + items
        except Exception as exc:  # noqa: BLE001 - outputs are still worth answering
            log.warning("Prefect artifacts of run %s unavailable: %s", run.id, exc)
            error = f"the Prefect server did not answer ({type(exc).__name__})"
    return RunArtifacts(items, error)


def read_step_output(session: Session, *, organization_id: str, run_id: str, step_id: str) -> bytes:
    """The JSON of a step's output, fetched from storage when it was stored out of line.
    ``step_id`` is a step execution's id, or the step's id in the workflow (its latest
    attempt with an output)."""
    runs_repo.read_run(session, organization_id=organization_id, run_id=run_id)
    attempts = steps_repo.read_step_executions(
        session, organization_id=organization_id, run_id=run_id
    )
    chosen = next((a for a in attempts if a.id == step_id), None)
    if chosen is None:
        chosen = next(
            (a for a in reversed(attempts) if a.step_id == step_id and a.output is not None), None
        )
    if chosen is None:
        raise NotFound(f"run {run_id} has no step {step_id!r}")
    return results.output_bytes(organization_id=organization_id, value=chosen.output)
