"""One Prefect call before a flow body, instead of five.

Prefect 3.9's ``run_flow_async`` for an existing flow run makes three calls before the flow
body (PATCH the run, propose Running, re-read the run), after the two POSTs that create it
(FIELD-NOTES.md: ~60 ms of the ~80 ms from creation to the first task on PostgreSQL). Orbin
creates the flow run with a single ``POST /flow_runs/`` already in the Running state, carrying
what the PATCH would have set (flow version, empirical policy), in the organization's work
pool. The engine then runs against this client, which answers those three calls from what the
server returned on creation: the server already holds exactly that state, so nothing is faked
that the server does not know. Every later call (task and final states, logs, cancellation)
goes to the server as usual, and anything not created here takes the ordinary path.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas import FlowRun, OrchestrationResult
from prefect.client.schemas.actions import FlowRunCreate
from prefect.client.schemas.objects import FlowRunPolicy, StateType
from prefect.client.schemas.responses import SetStateStatus, StateAcceptDetails
from prefect.context import AsyncClientContext
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL
from prefect.states import Running, to_state_create


class FastPathClient(PrefectClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Flow runs created here in Running, until the engine has taken them over.
        self._fresh: dict[UUID, FlowRun] = {}
        self._patched: set[UUID] = set()

    async def create_running_flow_run(
        self,
        *,
        flow_id: UUID,
        deployment_id: UUID,
        work_pool_name: str,
        name: str,
        parameters: dict[str, Any],
        tags: list[str],
        flow_version: str,
        idempotency_key: str,
    ) -> FlowRun:
        body = FlowRunCreate(
            flow_id=flow_id,
            deployment_id=deployment_id,
            work_pool_name=work_pool_name,
            name=name,
            parameters=parameters,
            tags=tags,
            flow_version=flow_version,
            idempotency_key=idempotency_key,
            empirical_policy=FlowRunPolicy(retries=0, retry_delay=0),
            state=to_state_create(Running()),
        )
        response = await self.request(
            "POST", "/flow_runs/", json=body.model_dump(mode="json", exclude_unset=True)
        )
        flow_run = engine_view(FlowRun.model_validate(response.json()))
        # An idempotent replay may return an older run in another state: no shortcut then.
        if flow_run.state is not None and flow_run.state.type == StateType.RUNNING:
            self._fresh[flow_run.id] = flow_run
            self._patched.add(flow_run.id)
        return flow_run

    def forget(self, flow_run_id: UUID) -> None:
        self._fresh.pop(flow_run_id, None)
        self._patched.discard(flow_run_id)

    async def update_flow_run(self, flow_run_id: UUID, **kwargs: Any) -> Any:  # type: ignore[override]
        if flow_run_id in self._patched and set(kwargs) <= {"flow_version", "empirical_policy"}:
            self._patched.discard(flow_run_id)  # sent with the creation already
            return None
        return await super().update_flow_run(flow_run_id, **kwargs)

    async def set_flow_run_state(  # type: ignore[override]
        self, flow_run_id: UUID | str, state: Any, force: bool = False
    ) -> OrchestrationResult[Any]:
        key = flow_run_id if isinstance(flow_run_id, UUID) else UUID(str(flow_run_id))
        fresh = self._fresh.get(key)
        if fresh is not None and state.type == StateType.RUNNING and fresh.state is not None:
            # The run was created in this very state; the server recorded the transition.
            return OrchestrationResult(
                status=SetStateStatus.ACCEPT, state=fresh.state, details=StateAcceptDetails()
            )
        self.forget(key)
        return await super().set_flow_run_state(flow_run_id, state, force=force)

    async def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        fresh = self._fresh.pop(flow_run_id, None)
        if fresh is not None:  # the engine's re-read right after proposing Running
            self._patched.discard(flow_run_id)
            return fresh
        return await super().read_flow_run(flow_run_id)


def engine_view(flow_run: FlowRun) -> FlowRun:
    """The flow run as the in-process engine should see it.

    For a run with a deployment, Prefect 3.9's engine starts a thread per run with its own
    event loop, client and events-websocket subscription, waits for it before the flow body
    and joins it afterwards (~50 ms before, up to 200 ms after, and one subscription per run
    on the server), only to notice a suspension requested from outside. Orbin never suspends
    runs through Prefect (long delays are Orbin's own), so the engine is handed the run
    without its deployment id; the server keeps it, so the run stays the deployment's run in
    the organization's work pool.
    """
    return flow_run.model_copy(update={"deployment_id": None})


def fast_client_context() -> tuple[AsyncClientContext, FastPathClient]:
    """A client context whose client is a FastPathClient; enter it around the worker."""
    client = FastPathClient(
        PREFECT_API_URL.value(),
        auth_string=PREFECT_API_AUTH_STRING.value(),
        api_key=PREFECT_API_KEY.value(),
    )
    ctx = AsyncClientContext.model_construct(client=client)
    return ctx, client
