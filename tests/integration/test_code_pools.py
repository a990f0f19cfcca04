"""Code pools: ``orbin org create --code-pool-type`` makes a Prefect work pool of that type for
the organization's code flows, with its plan's concurrency; a code flow rolled out there is
submitted to it (and run by that pool's own Prefect worker), while Orbin's spec workflows keep
running on the warm worker. Against a real Prefect server; no Kubernetes or ECS here: the
flow run is checked to wait in the pool, and a process pool shows the whole way."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import services
from tests.support.orbin_client import Orbin
from tests.support.rig import BIN, Rig, start_rig

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    r = start_rig(tmp_path_factory.mktemp("code-pools"))
    try:
        r.start_worker("main")
        r.wait_worker_ready("main")
        yield r
    finally:
        r.stop()


def _pool(r: Rig, name: str) -> dict[str, Any]:
    resp = httpx.get(f"{r.prefect_api_url}/work_pools/{name}", timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _org(r: Rig, slug: str, pool_type: str) -> Orbin:
    out = r.orbin("org", "create", "--slug", slug, "--plan", "pro", "--code-pool-type", pool_type)
    assert f"code pool  orbin-{slug}_code ({pool_type}, 25 runs at once; in Prefect)" in out, out
    key = r.orbin("api-key", "create", "--org", slug, "--name", "k").splitlines()[-1]
    return Orbin(r.api_url, key, r.prefect_api_url)


def _deploy(r: Rig, pool: str) -> str:
    """hello_code (orbin_flows/examples.py) rolled out into ``pool``, as prefect deploy would."""
    from prefect.client.orchestration import PrefectClient
    from prefect.utilities.callables import parameter_schema

    from orbin_flows.examples import hello_code

    name = f"hello-{uuid.uuid4().hex[:6]}"

    async def deploy() -> None:
        async with PrefectClient(r.prefect_api_url) as client:
            flow_id = await client.create_flow_from_name("hello-code")
            await client.create_deployment(
                flow_id=flow_id,
                name=name,
                work_pool_name=pool,
                entrypoint="orbin_flows/examples.py:hello_code",
                parameter_openapi_schema=parameter_schema(hello_code).model_dump_for_openapi(),
                pull_steps=[
                    {
                        "prefect.deployments.steps.set_working_directory": {
                            "directory": str(services.ROOT)
                        }
                    }
                ],
            )

    asyncio.run(deploy())
    return f"hello-code/{name}"


def _remove_pools(r: Rig, slug: str) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from orbin_flows.organizations import delete_pool

    with temporary_settings(updates={PREFECT_API_URL: r.prefect_api_url}):
        assert asyncio.run(delete_pool(slug))


def test_kubernetes_and_ecs_pools_have_their_type_template_and_plan_concurrency(rig: Rig) -> None:
    _org(rig, "kube", "kubernetes")
    pool = _pool(rig, "orbin-kube_code")
    assert pool["type"] == "kubernetes" and pool["concurrency_limit"] == 25
    assert "job_manifest" in pool["base_job_template"]["job_configuration"]
    _org(rig, "fargate", "ecs")
    pool = _pool(rig, "orbin-fargate_code")
    assert pool["type"] == "ecs" and pool["concurrency_limit"] == 25
    assert "task_definition" in pool["base_job_template"]["job_configuration"]
    _remove_pools(rig, "fargate")  # as deleting the organization does
    gone = httpx.get(f"{rig.prefect_api_url}/work_pools/orbin-fargate_code", timeout=30)
    assert gone.status_code == 404

    bad = subprocess.run(
        [str(BIN / "orbin"), "org", "create", "--slug", "nope", "--code-pool-type", "docker"],
        env=rig.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "code pool type must be one of process, kubernetes, ecs" in bad.stdout + bad.stderr

    # A plan change reaches the code pool too (the worker's pool sync).
    rig.orbin("org", "set-plan", "--org", "kube", "--plan", "free")
    deadline = time.monotonic() + 30
    while _pool(rig, "orbin-kube_code")["concurrency_limit"] != 5:
        assert time.monotonic() < deadline, _pool(rig, "orbin-kube_code")
        time.sleep(0.5)


def test_a_code_flow_in_the_kubernetes_pool_is_submitted_to_it(rig: Rig) -> None:
    orbin = _org(rig, "k8s", "kubernetes")
    deployment = _deploy(rig, "orbin-k8s_code")
    wf = orbin.create({"name": "Hello k8s", "slug": "hello-k8s", "deployment": deployment})
    run_id = orbin.start(wf, {"name": "Ada"})
    run = orbin.wait_until(run_id, lambda r: bool(r.get("prefectFlowRunId")), seconds=60)
    fr = orbin.flow_run(run["prefectFlowRunId"])
    assert fr["work_pool_name"] == "orbin-k8s_code" and fr["state_type"] == "SCHEDULED"
    assert fr["parameters"] == {"data": {"name": "Ada"}}
    assert "org:k8s" in fr["tags"]
    run = orbin.wait_until(run_id, lambda r: r["status"] == "running", seconds=30)
    # No Kubernetes here: nothing picks it up. Canceling in Orbin cancels the flow run.
    assert orbin.call("POST", f"/v1/runs/{run_id}/cancel").status_code in (200, 202)
    assert orbin.wait(run_id)["status"] == "canceled"
    orbin.wait_flow_run(run["prefectFlowRunId"], "CANCELLED", seconds=30)
    # Orbin's own workflows of this organization still run on the warm worker.
    spec_wf = orbin.create(
        {
            "name": "Spec",
            "slug": "spec",
            "steps": [
                {
                    "id": "a",
                    "name": "A",
                    "type": "action",
                    "config": {"action": "transform", "output": {"ok": True}},
                }
            ],
        }
    )
    done = orbin.wait(orbin.start(spec_wf))
    assert done["status"] == "completed"
    assert orbin.flow_run(done["prefectFlowRunId"])["work_pool_name"] == "orbin-k8s"


def test_a_code_flow_in_a_process_pool_runs_on_that_pools_prefect_worker(rig: Rig) -> None:
    orbin = _org(rig, "proc", "process")
    deployment = _deploy(rig, "orbin-proc_code")
    env = {**rig.env, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    log = open(rig.home / "prefect-worker.log", "ab")  # noqa: SIM115
    worker = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "orbin-proc_code"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=str(services.ROOT),
    )
    try:
        wf = orbin.create({"name": "Hello proc", "slug": "hello-proc", "deployment": deployment})
        run = orbin.wait(orbin.start(wf, {"name": "Ada"}), seconds=120)
        assert run["status"] == "completed", (run, (rig.home / "prefect-worker.log").read_text())
        fr = orbin.flow_run(run["prefectFlowRunId"])
        assert fr["work_pool_name"] == "orbin-proc_code" and fr["state_type"] == "COMPLETED"
        assert fr["run_count"] == 1
        run = orbin.wait_until(run["id"], lambda r: bool(r["steps"]), seconds=30)
        assert [s["stepName"] for s in run["steps"]] == ["Greet"]
    finally:
        services.stop_process(worker)
        log.close()
