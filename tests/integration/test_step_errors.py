"""What a tenant sees of a failure, read from outside (the API of a running platform): the
user's own code frames and Orbin's message, never the platform's file paths; the operator
keeps the whole trace in the worker's log."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.support.httpd import Answer, Service
from tests.support.orbin_client import Orbin
from tests.support.services import Platform

pytestmark = pytest.mark.prefect

# A path on this machine: a file or folder name after a slash, as a traceback names them.
PLATFORM_PATH = re.compile(r"/(?:[\w.-]+/)*[\w.-]+\.py\b|site-packages|orbin_flows|prefect/")


@pytest.fixture
def orbin(platform: Platform) -> Orbin:
    slug = f"err-{uuid.uuid4().hex[:8]}"
    platform.orbin("org", "create", "--slug", slug, "--plan", "pro")
    return Orbin(platform.api_url, platform.new_key(slug), platform.prefect_api_url)


@pytest.fixture(scope="module")
def svc() -> Iterator[Service]:
    service = Service()
    yield service
    service.close()


def _no_platform_paths(doc: object) -> None:
    text = json.dumps(doc)
    found = PLATFORM_PATH.findall(text)
    assert not found, f"platform internals shown to the tenant: {found} in {text[:2000]}"


def _worker_log(platform: Platform, needle: str, seconds: float = 10) -> str:
    path = platform.home / "logs" / "worker.log"
    deadline = time.monotonic() + seconds
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_a_failing_python_step_shows_its_own_frames_only(orbin: Orbin, platform: Platform) -> None:
    marker = f"bad-{uuid.uuid4().hex[:6]}"
    code = (
        "def check(order):\n"
        f"    raise ValueError('{marker}: ' + order['id'])\n"
        "def main(input):\n"
        "    return check({'id': 'o-1'})\n"
    )
    wf = orbin.create(
        {
            "name": "Py fails",
            "slug": "py-fails",
            "steps": [
                {
                    "id": "py",
                    "name": "Py",
                    "type": "action",
                    "retryPolicy": {"maxAttempts": 1},
                    "config": {"action": "python", "code": code},
                }
            ],
        }
    )
    run = orbin.wait(orbin.start(wf))
    assert run["status"] == "failed"
    step = orbin.steps(run)["py"]
    assert step["status"] == "failed"
    assert f"ValueError: {marker}: o-1" in step["error"]["message"]
    stack = step["error"]["stack"]
    assert 'File "<step>", line 4, in main' in stack and 'File "<step>", line 2, in check' in stack
    assert "return check({'id': 'o-1'})" in stack, "the user's source line is shown"
    assert run["error"]["stack"] == stack and run["error"]["stepId"] == "py"
    _no_platform_paths(run)
    listed = orbin.call("GET", f"/v1/runs?workflowId={wf}").json()
    _no_platform_paths(listed)
    log = _worker_log(platform, marker)
    assert marker in log and "orbin_flows/actions/python.py" in log, "operators keep the trace"


def test_a_failing_http_step_shows_orbins_message_and_no_trace(
    orbin: Orbin, platform: Platform, svc: Service
) -> None:
    path = f"/missing-{uuid.uuid4().hex[:8]}"
    url = svc.script(path, Answer(404, {"detail": "no such order"}))
    wf = orbin.create(
        {
            "name": "Http fails",
            "slug": "http-fails",
            "steps": [
                {
                    "id": "get",
                    "name": "Get",
                    "type": "action",
                    "retryPolicy": {"maxAttempts": 1},
                    "config": {"action": "http", "url": url},
                },
            ],
        }
    )
    run = orbin.wait(orbin.start(wf))
    assert run["status"] == "failed"
    step = orbin.steps(run)["get"]
    assert step["status"] == "failed" and "404" in step["error"]["message"]
    assert "stack" not in step["error"] and "stack" not in run["error"]
    _no_platform_paths(run)
    log = _worker_log(platform, path)
    assert path in log and "Traceback" in log and "orbin_flows/" in log
