"""Large step outputs stored out of line: the step row keeps a reference, the run goes on with
the full value, and the API fetches it on demand, byte for byte, for its own organization
only. Local storage (a folder under ORBIN_HOME) and S3 through prefect-aws's ``S3Bucket``
against moto's server (real boto3 over HTTP). SQLite and PostgreSQL, in-process, no Prefect
server (tests/integration/test_run_artifacts.py runs it on one)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from orbin_flows import results
from tenancy import config
from tenancy import runs as runs_repo
from tenancy import steps as steps_repo
from tenancy.clock import now_ms
from tenancy.db import session_scope
from tenancy.errors import NotFound
from tenancy.models import WorkflowRun
from tests.support.services import free_port

BLOB = "0123456789abcdef" * 5000  # 80,000 characters: over the 64 KiB default
SPEC = {
    "name": "Big",
    "slug": "big",
    "status": "active",
    "trigger": {"type": "manual"},
    "steps": [
        {
            "id": "big",
            "name": "Big",
            "type": "action",
            "config": {"action": "transform", "output": {"blob": "{{ trigger.data.blob }}"}},
        },
        {
            "id": "after",
            "name": "After",
            "type": "action",
            "config": {
                "action": "transform",
                "output": {
                    "length": "{{ steps.big.output.blob | length }}",
                    "tail": "{{ steps.big.output.blob[-4:] }}",
                },
            },
        },
    ],
}


def _h(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def _started_run(api, key: str, data: dict[str, Any]) -> str:
    wf = api.post("/v1/workflows", json=SPEC, headers=_h(key))
    assert wf.status_code == 201, wf.text
    r = api.post(f"/v1/workflows/{wf.json()['id']}/runs", json={"data": data}, headers=_h(key))
    assert r.status_code == 202, r.text
    return r.json()["runId"]


def _execute(run_id: str) -> Any:
    """The worker's executor on this run, its steps' Prefect tasks replaced by direct calls."""
    from orbin_flows.runtime.active import ActiveRuns
    from orbin_flows.runtime.engine import RunExecutor
    from tenancy.run_plans import load_plan

    plan = load_plan(run_id)
    holder: dict[str, RunExecutor] = {}

    async def task(_run_id: str, key: str) -> Any:
        return await holder["x"].attempt(key)

    tasks = {s["id"]: task for s in plan.spec["steps"]}
    executor = RunExecutor(plan, tasks, "w-test", ActiveRuns())
    holder["x"] = executor
    asyncio.run(executor.execute(None))
    return executor


def test_a_large_output_is_stored_and_the_next_step_sees_all_of_it(api, make_org) -> None:
    acme = make_org("acme")
    run_id = _started_run(api, acme.key, {"blob": BLOB})
    executor = _execute(run_id)

    detail = api.get(f"/v1/runs/{run_id}", headers=_h(acme.key)).json()
    assert detail["status"] == "completed", detail
    big, after = detail["steps"]
    ref = big["output"]["$ref"]
    assert ref["storage"] == "local" and ref["bytes"] == len(orjson.dumps({"blob": BLOB}))
    assert ref["key"].startswith(f"{acme.id}/{run_id}/")
    assert big["outputUrl"] == f"/v1/runs/{run_id}/steps/{big['id']}/output"
    # The later step templated the full value, not the reference.
    assert after["output"] == {"length": len(BLOB), "tail": BLOB[-4:]}
    assert after["outputUrl"] is None
    # The file is under ORBIN_HOME, and the API answers its bytes exactly.
    stored = config.get_settings().home / "results" / ref["key"]
    assert stored.read_bytes() == orjson.dumps({"blob": BLOB})
    fetched = api.get(big["outputUrl"], headers=_h(acme.key))
    assert fetched.status_code == 200 and fetched.content == stored.read_bytes()
    by_step = api.get(f"/v1/runs/{run_id}/steps/big/output", headers=_h(acme.key))
    assert by_step.content == stored.read_bytes()
    small = api.get(f"/v1/runs/{run_id}/steps/after/output", headers=_h(acme.key))
    assert small.json() == after["output"]

    listed = api.get(f"/v1/runs/{run_id}/artifacts", headers=_h(acme.key)).json()
    assert listed["hasMore"] is False and listed["nextCursor"] is None
    (output,) = listed["data"]  # no Prefect flow run here: the stored output only
    assert output["kind"] == "output" and output["stepId"] == "big"
    assert output["bytes"] == ref["bytes"] and output["url"] == big["outputUrl"]

    # What the worker leaves in Prefect for the flow run: sizes and statuses, no tenant data.
    from orbin_flows.runtime.run_artifacts import build_artifacts

    markdown, table = build_artifacts(executor)
    assert (
        run_id in markdown and "stored out of line: 1" in markdown and "**completed**" in markdown
    )
    assert [(r["step"], r["status"]) for r in table] == [
        ("big", "completed"),
        ("after", "completed"),
    ]
    assert "stored (local)" in table[0]["output"] and BLOB[:16] not in markdown + str(table)


def test_a_recovered_run_loads_a_stored_output_back_for_its_next_step(api, make_org) -> None:
    """A run taken over after its first step completed: that step is not run again, and the
    next one templates the full value read back from storage."""
    acme = make_org("acme")
    run_id = _started_run(api, acme.key, {"blob": "not this one"})
    ref = results.store_output(
        organization_id=acme.id,
        organization_slug="acme",
        run_id=run_id,
        step_key="big",
        value={"blob": BLOB},
    )
    with session_scope() as session:
        run = session.get(WorkflowRun, run_id)
        run.started_at = now_ms() - 1_000  # an earlier worker started it, then was lost
        rec = steps_repo.start_step(
            session,
            run=run,
            step_id="big",
            step_name="Big",
            step_type="action",
            attempt=1,
            max_attempts=1,
            input={},
        )
        steps_repo.finish_step(session, step=rec, status="completed", output=ref)
    _execute(run_id)
    detail = api.get(f"/v1/runs/{run_id}", headers=_h(acme.key)).json()
    assert detail["status"] == "completed"
    assert [s["stepId"] for s in detail["steps"]] == ["big", "after"], "big ran once"
    assert detail["steps"][1]["output"] == {"length": len(BLOB), "tail": BLOB[-4:]}


def test_artifacts_answer_the_stored_outputs_when_prefect_hangs(api, make_org) -> None:
    """A Prefect server that accepts connections and never answers: the list comes back in
    a few seconds with the outputs, and says why Prefect's artifacts are missing."""
    import socket
    import time
    import uuid

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from orbin_flows import artifacts as artifact_cases

    acme = make_org("acme")
    run_id = _started_run(api, acme.key, {"blob": BLOB})
    _execute(run_id)
    with session_scope() as session:
        session.get(WorkflowRun, run_id).prefect_flow_run_id = str(uuid.uuid4())
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
    try:
        started = time.monotonic()
        with temporary_settings(updates={PREFECT_API_URL: url}), session_scope() as session:
            found = artifact_cases.read_run_artifacts(
                session, organization_id=acme.id, run_id=run_id
            )
        took = time.monotonic() - started
    finally:
        silent.close()
    assert took < artifact_cases.PREFECT_BUDGET + 2, took
    assert [a.kind for a in found.items] == ["output"]
    assert found.prefect_error and "did not answer" in found.prefect_error


def test_another_organization_sees_nothing_of_it(api, make_org) -> None:
    acme, other = make_org("acme"), make_org("other")
    run_id = _started_run(api, acme.key, {"blob": BLOB})
    _execute(run_id)
    step = api.get(f"/v1/runs/{run_id}", headers=_h(acme.key)).json()["steps"][0]
    for path in (
        f"/v1/runs/{run_id}",
        f"/v1/runs/{run_id}/artifacts",
        f"/v1/runs/{run_id}/steps/{step['id']}/output",
        f"/v1/runs/{run_id}/steps/big/output",
    ):
        r = api.get(path, headers=_h(other.key))
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert BLOB[:32] not in r.text


def test_a_forged_reference_reads_nothing_of_another_organization(api, make_org) -> None:
    acme, other = make_org("acme"), make_org("other")
    theirs = _started_run(api, acme.key, {"blob": BLOB})
    _execute(theirs)
    key = api.get(f"/v1/runs/{theirs}", headers=_h(acme.key)).json()["steps"][0]["output"]
    # A step of "other" outputs exactly the reference acme's row holds.
    mine = _started_run(api, other.key, {"blob": "x"})
    with session_scope() as session:
        run = session.get(WorkflowRun, mine)
        rec = steps_repo.start_step(
            session,
            run=run,
            step_id="big",
            step_name="big",
            step_type="action",
            attempt=1,
            max_attempts=1,
            input={},
        )
        steps_repo.finish_step(session, step=rec, status="completed", output=key)
        runs_repo.finish_run(session, run=run, status="completed")
    r = api.get(f"/v1/runs/{mine}/steps/big/output", headers=_h(other.key))
    assert r.status_code == 404 and BLOB[:32] not in r.text
    with pytest.raises(NotFound):
        results.load_value(organization_id=other.id, value=key)


def test_small_outputs_stay_inline_and_references_load_back(database, make_org) -> None:
    acme = make_org("acme")
    kw = {"organization_id": acme.id, "organization_slug": "acme", "run_id": "r1"}
    assert results.store_output(step_key="s", value={"n": 1}, **kw) == {"n": 1}
    assert results.store_output(step_key="s", value=None, **kw) is None
    big = {"rows": [{"i": i, "name": f"row {i}"} for i in range(5000)]}
    ref = results.store_output(step_key="loop[3].s", value=big, **kw)
    assert results.ref_of(ref) is not None and "loop_3_.s" in ref["$ref"]["key"]
    loaded = results.load_values(organization_id=acme.id, outputs={"a": ref, "b": 2})
    assert loaded == {"a": big, "b": 2}


def test_the_run_debugger_shows_the_reference_and_loads_the_output(api, make_org) -> None:
    from tenancy.orgs import add_member, create_user
    from tests.unit.test_dashboard_pages import PASSWORD, signed_in

    acme = make_org("acme")
    with session_scope() as session:
        user = create_user(session, email="ada@example.com", name="Ada", password=PASSWORD)
        add_member(session, organization_id=acme.id, user_id=user.id, role="viewer")
    run_id = _started_run(api, acme.key, {"blob": BLOB})
    _execute(run_id)
    step = api.get(f"/v1/runs/{run_id}", headers=_h(acme.key)).json()["steps"][0]

    at = signed_in("ada@example.com")
    at.switch_page("app_pages/run_detail.py")
    at.query_params["id"] = run_id
    at.run()
    at.radio(key="run_detail.step").set_value("big").run()
    assert not at.exception
    size = f"{step['output']['$ref']['bytes']:,}"
    assert any(f"Stored out of line: {size} bytes in `local`" in c.value for c in at.caption)
    output_tab = next(t for t in at.tabs if t.label == "Output")
    assert not output_tab.json, "not loaded until asked"
    at.button(key=f"run_detail.output.{step['id']}").click().run()
    assert not at.exception
    output_tab = next(t for t in at.tabs if t.label == "Output")
    assert [orjson.loads(j.value) for j in output_tab.json] == [{"blob": BLOB}]


# --- S3 through prefect-aws, against moto's server -------------------------------------


@pytest.fixture
def s3(monkeypatch) -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ORBIN_RESULTS_S3_BUCKET": "orbin-test-results",
        "ORBIN_RESULTS_S3_ENDPOINT_URL": endpoint,
        "ORBIN_RESULTS_S3_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    config.reset_settings()
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="orbin-test-results")
    try:
        yield client
    finally:
        server.stop()
        config.reset_settings()


def test_outputs_go_to_the_organizations_s3_folder(api, make_org, s3) -> None:
    acme, other = make_org("acme"), make_org("other")
    run_id = _started_run(api, acme.key, {"blob": BLOB})
    _execute(run_id)
    big = api.get(f"/v1/runs/{run_id}", headers=_h(acme.key)).json()["steps"][0]
    ref = big["output"]["$ref"]
    assert ref["storage"] == "s3://orbin-test-results/orbin-results/acme"
    obj = s3.get_object(Bucket="orbin-test-results", Key=f"orbin-results/acme/{ref['key']}")
    body = obj["Body"].read()
    assert body == orjson.dumps({"blob": BLOB})
    assert not (config.get_settings().home / "results" / ref["key"]).exists()
    fetched = api.get(big["outputUrl"], headers=_h(acme.key))
    assert fetched.status_code == 200 and fetched.content == body
    assert api.get(big["outputUrl"], headers=_h(other.key)).status_code == 404
    # A stored object that is gone is a 404 with a reason, not a 500.
    s3.delete_object(Bucket="orbin-test-results", Key=f"orbin-results/acme/{ref['key']}")
    gone = api.get(big["outputUrl"], headers=_h(acme.key))
    assert gone.status_code == 404, gone.text


def test_an_unreachable_storage_keeps_the_output_inline(api, make_org, monkeypatch) -> None:
    """S3 down when the step ends: the run goes on and nothing is lost (stored inline)."""
    monkeypatch.setenv("ORBIN_RESULTS_S3_BUCKET", "nowhere")
    monkeypatch.setenv("ORBIN_RESULTS_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("ORBIN_RESULTS_S3_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    config.reset_settings()
    acme = make_org("acme")
    run_id = _started_run(api, acme.key, {"blob": BLOB})
    _execute(run_id)
    detail = api.get(f"/v1/runs/{run_id}", headers=_h(acme.key)).json()
    assert detail["status"] == "completed"
    big, after = detail["steps"]
    assert big["output"] == {"blob": BLOB} and big["outputUrl"] is None
    assert after["output"] == {"length": len(BLOB), "tail": BLOB[-4:]}
