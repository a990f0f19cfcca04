"""Artifacts and large outputs on a real installation: a Prefect server, the API and a worker
(tests/support/rig.py), result storage in S3 through prefect-aws's ``S3Bucket`` against
moto's server. A run whose first step outputs more than 64 KiB keeps a reference on its step
row, its next step templates the full value, the API fetches it byte for byte (and another
organization gets 404), and the run's summary and step table are Prefect artifacts of its
flow run, listed by ``GET /v1/runs/{id}/artifacts``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.support import services
from tests.support.orbin_client import Orbin
from tests.support.rig import Rig, start_rig

pytestmark = pytest.mark.prefect

BUCKET = "orbin-it-results"
BLOB = "".join(f"{i:07d}," for i in range(12_000))  # 96,000 characters


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    import boto3
    from moto.server import ThreadedMotoServer

    port = services.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint, client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, s3: tuple[str, Any]) -> Iterator[Rig]:
    endpoint, _ = s3
    r = start_rig(
        tmp_path_factory.mktemp("artifacts-rig"),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        ORBIN_RESULTS_S3_BUCKET=BUCKET,
        ORBIN_RESULTS_S3_ENDPOINT_URL=endpoint,
        ORBIN_RESULTS_S3_REGION="us-east-1",
    )
    try:
        r.start_worker("main")
        r.wait_worker_ready("main")
        yield r
    finally:
        r.stop()


def _prefect_artifacts(prefect_api: str, flow_run_id: str, at_least: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while True:
        found = httpx.post(
            f"{prefect_api}/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}},
            timeout=30,
        ).json()
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_a_large_output_goes_to_s3_and_the_run_leaves_artifacts_in_prefect(
    rig: Rig, s3: tuple[str, Any]
) -> None:
    _, client = s3
    orbin = Orbin(rig.api_url, rig.key, rig.prefect_api_url)
    wf = orbin.create(
        {
            "name": "Big output",
            "slug": "big-output",
            "steps": [
                {
                    "id": "big",
                    "name": "Big",
                    "type": "action",
                    "config": {"action": "transform", "output": {"csv": "{{ trigger.data.csv }}"}},
                },
                {
                    "id": "after",
                    "name": "After",
                    "type": "action",
                    "config": {
                        "action": "transform",
                        "output": {
                            "length": "{{ steps.big.output.csv | length }}",
                            "last": "{{ steps.big.output.csv[-8:] }}",
                        },
                    },
                },
            ],
        }
    )
    run_id = orbin.start(wf, {"csv": BLOB})
    run = orbin.wait(run_id, seconds=90)
    assert run["status"] == "completed", run
    steps = orbin.steps(run)
    ref = steps["big"]["output"]["$ref"]
    expected = orjson.dumps({"csv": BLOB})
    assert ref["bytes"] == len(expected) > 64 * 1024
    assert ref["storage"] == f"s3://{BUCKET}/orbin-results/demo"
    assert steps["after"]["output"] == {"length": len(BLOB), "last": BLOB[-8:]}
    # The run's result is its last (small) output, inline.
    assert run["result"] == steps["after"]["output"]

    # In S3 under the organization's folder, and the API answers the same bytes.
    obj = client.get_object(Bucket=BUCKET, Key=f"orbin-results/demo/{ref['key']}")
    assert obj["Body"].read() == expected
    fetched = orbin.call("GET", steps["big"]["outputUrl"])
    assert fetched.status_code == 200 and fetched.content == expected
    # The organization's S3Bucket is a Prefect block an operator can read.
    block = httpx.get(
        f"{rig.prefect_api_url}/block_types/slug/s3-bucket/block_documents/name/orbin-results-demo",
        timeout=30,
    )
    assert block.status_code == 200, block.text
    assert block.json()["data"]["bucket_name"] == BUCKET
    assert block.json()["data"]["bucket_folder"] == "orbin-results/demo"

    # Prefect holds the run's artifacts on its flow run; the API lists them with the output.
    flow_run_id = run["prefectFlowRunId"]
    in_prefect = _prefect_artifacts(rig.prefect_api_url, flow_run_id, at_least=2)
    assert sorted(a["type"] for a in in_prefect) == ["markdown", "table"]
    markdown = next(a for a in in_prefect if a["type"] == "markdown")["data"]
    assert run_id in markdown and "stored out of line: 1" in markdown
    assert BLOB[:40] not in str(in_prefect), "tenant data stays out of Prefect"
    table = orjson.loads(next(a for a in in_prefect if a["type"] == "table")["data"])
    assert [r["step"] for r in table] == ["big", "after"]
    listed = orbin.call("GET", f"/v1/runs/{run_id}/artifacts").json()
    assert listed["prefectError"] is None and listed["hasMore"] is False
    kinds = [a["kind"] for a in listed["data"]]
    assert sorted(kinds) == ["markdown", "output", "table"], listed
    assert {a["id"] for a in listed["data"] if a["kind"] != "output"} == {
        a["id"] for a in in_prefect
    }
    output = next(a for a in listed["data"] if a["kind"] == "output")
    assert output["url"] == steps["big"]["outputUrl"] and output["bytes"] == ref["bytes"]
    first = orbin.call("GET", f"/v1/runs/{run_id}/artifacts", params={"limit": 1}).json()
    assert first["hasMore"] is True and len(first["data"]) == 1
    rest = orbin.call(
        "GET", f"/v1/runs/{run_id}/artifacts", params={"cursor": first["nextCursor"]}
    ).json()
    assert [a["id"] for a in first["data"] + rest["data"]] == [a["id"] for a in listed["data"]]

    # Another organization: 404 on the run, its artifacts and its output.
    slug = f"other-{uuid.uuid4().hex[:6]}"
    rig.orbin("org", "create", "--slug", slug)
    other_key = rig.orbin(
        "api-key", "create", "--org", slug, "--type", "secret", "--name", "t"
    ).splitlines()[-1]
    stranger = Orbin(rig.api_url, other_key, rig.prefect_api_url)
    for path in (
        f"/v1/runs/{run_id}",
        f"/v1/runs/{run_id}/artifacts",
        steps["big"]["outputUrl"],
        f"/v1/runs/{run_id}/steps/big/output",
    ):
        r = stranger.call("GET", path)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
