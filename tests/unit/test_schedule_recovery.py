"""A scheduled flow run claimed (Pending) by a worker that died before making its Orbin run
is put back to Scheduled, due now, for the ordinary pick-up; one that has its run, one that
is merely young, or one not made by Prefect's scheduler is left alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

from orbin_flows.runtime import schedule_keeper as schedules
from orbin_flows.runtime import schedule_recovery


@dataclass
class FakeClient:
    runs: list[Any]
    states: dict[Any, Any] = field(default_factory=dict)
    filters: list[Any] = field(default_factory=list)

    async def read_flow_runs(self, *, flow_run_filter: Any, limit: int) -> list[Any]:
        self.filters.append(flow_run_filter)
        return self.runs

    async def set_flow_run_state(self, flow_run_id: Any, state: Any, force: bool) -> Any:
        self.states[flow_run_id] = state


def _flow_run(age_s: float, auto: bool = True) -> Any:
    when = datetime.now(UTC) - timedelta(seconds=age_s)
    return SimpleNamespace(
        id=uuid4(),
        deployment_id=uuid4(),
        auto_scheduled=auto,
        state=SimpleNamespace(timestamp=when),
    )


async def test_only_lost_claims_are_scheduled_again(monkeypatch) -> None:
    lost, young, manual, has_run = (
        _flow_run(120),
        _flow_run(1),
        _flow_run(120, False),
        _flow_run(120),
    )
    monkeypatch.setattr(schedules, "_any_schedule", lambda: True)
    monkeypatch.setattr(
        schedules, "_lookup", lambda dep, fr: "taken" if fr == str(has_run.id) else "wf-1"
    )
    client = FakeClient([lost, young, manual, has_run])
    worker = SimpleNamespace(client=client, lease_ms=30_000)
    assert await schedule_recovery.recover_stuck(worker) == 1
    assert list(client.states) == [lost.id]
    state = client.states[lost.id]
    assert state.type.value == "SCHEDULED" and "lost" in state.message
    assert client.filters[0].state.type.any_[0].value == "PENDING"
