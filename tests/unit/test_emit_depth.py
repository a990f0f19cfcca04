"""An emit loop is cut: a workflow whose event starts itself (through an ``emit`` step) runs
ORBIN_EMIT_MAX_DEPTH times, then the next emitted event is a dead letter with the reason."""

from __future__ import annotations

import pytest

from orbin_flows.actions.base import StepContext
from orbin_flows.actions.emit import Emit, EmitConfig
from tenancy import config
from tests.unit.ingest_support import active_workflow


@pytest.fixture
def depth_3(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ORBIN_EMIT_MAX_DEPTH", "3")
    config.reset_settings()
    yield
    config.reset_settings()


async def test_a_self_starting_workflow_stops_at_the_depth(api, make_org, depth_3) -> None:
    org = make_org("loop")
    active_workflow(org.id, "loop.tick")
    r = api.post(
        "/v1/events", json={"type": "loop.tick", "data": {}}, headers={"x-api-key": org.key}
    )
    run_id = r.json()["runIds"][0]
    outputs = []
    for _ in range(6):
        ctx = StepContext(org.id, "loop", run_id, "emit", 1)
        out = await Emit().run(EmitConfig(action="emit", type="loop.tick"), ctx)
        outputs.append(out)
        if not out["runIds"]:
            break
        run_id = out["runIds"][0]
    assert [bool(o["runIds"]) for o in outputs] == [True, True, True, False]
    assert "ORBIN_EMIT_MAX_DEPTH" in outputs[-1]["deadLetter"]
    event = api.get(f"/v1/events/{outputs[-1]['id']}", headers={"x-api-key": org.key})
    assert event.json()["status"] == "failed" and "emit chain" in event.json()["error"]
    again = await Emit().run(EmitConfig(action="emit", type="loop.tick"), ctx)
    assert again["id"] == outputs[-1]["id"], "a retried step does not emit twice"
    assert again["eventId"] == again["id"] and again["idempotencyKey"].startswith("emit:")
