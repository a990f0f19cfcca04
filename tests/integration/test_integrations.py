"""Integrations on the whole platform (`orbin up`): created over HTTP, used as workflow steps
by the worker against a local Slack/GitHub/webhook protocol server, saved as Prefect blocks
and loaded by a code flow rolled out with ``prefect deploy``; no secret in plain text on disk."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orbin_flows.signatures import verify_orbin
from tests.support import services
from tests.support.orbin_client import Orbin
from tests.support.providers import GITHUB_TOKEN, SLACK_TOKEN, Providers

pytestmark = pytest.mark.prefect
SIGNING = f"whsec-it-{uuid.uuid4().hex}"
SECRETS = (SLACK_TOKEN, GITHUB_TOKEN, SIGNING)
BIN = services.ROOT / ".venv" / "bin"


@pytest.fixture(scope="module")
def providers() -> Iterator[Providers]:
    p = Providers()
    yield p
    p.close()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, providers: Providers):
    p = services.start_platform(
        tmp_path_factory.mktemp("orbin-integrations"),
        extra_env={"ORBIN_EGRESS_ALLOW": f"127.0.0.1:{providers.port}"},
    )
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="module")
def orbin(platform, providers: Providers) -> Orbin:
    client = Orbin(platform.api_url, platform.demo_key, platform.prefect_api_url)
    for body in (
        {"provider": "webhook", "name": "hook", "config": {"url": f"{providers.url}/hook"},
         "credentials": {"signingSecret": SIGNING}},
        {"provider": "slack", "name": "team", "config": {"baseUrl": providers.slack_url},
         "credentials": {"botToken": SLACK_TOKEN}},
        {"provider": "github", "name": "gh",
         "config": {"baseUrl": providers.github_url},
         "credentials": {"token": GITHUB_TOKEN}},
    ):  # fmt: skip
        resp = client.call("POST", "/v1/integrations", json=body)
        assert resp.status_code == 201, resp.text
    return client


def test_a_workflow_uses_webhook_slack_and_github_steps(orbin: Orbin, providers, platform):
    wf = orbin.create(
        {
            "name": "Notify",
            "slug": "notify",
            "steps": [
                {"id": "hook", "name": "Hook", "type": "action",
                 "config": {"action": "webhook.send", "integration": "hook",
                            "body": {"hello": "{{ trigger.data.name }}"}}},
                {"id": "slack", "name": "Slack", "type": "action",
                 "config": {"action": "slack.postMessage", "integration": "team",
                            "channel": "#general", "text": "Hi {{ trigger.data.name }}"}},
                {"id": "issue", "name": "Issue", "type": "action",
                 "config": {"action": "github.createIssue", "integration": "gh",
                            "repo": "octo/hello", "title": "For {{ trigger.data.name }}",
                            "labels": ["bot"]}},
            ],
        }
    )  # fmt: skip
    run = orbin.wait(orbin.start(wf, {"name": "Ada"}), seconds=90)
    assert run["status"] == "completed", run
    steps = orbin.steps(run)
    assert steps["slack"]["output"]["channel"] == "C123"
    assert steps["issue"]["output"]["number"] == 42
    hook = providers.calls_to("/hook")[-1]
    verify_orbin(hook.headers, hook.body.encode(), [SIGNING])
    assert hook.json() == {"hello": "Ada"}
    assert providers.calls_to("chat.postMessage")[-1].json()["text"] == "Hi Ada"
    assert providers.calls_to("/repos/octo/hello/issues")[-1].json()["title"] == "For Ada"
    listed = orbin.call("GET", "/v1/integrations").json()["data"]
    assert all(i["lastUsedAt"] for i in listed)
    assert not any(s in str(run) for s in SECRETS)


def test_a_failing_provider_fails_the_step_with_its_message(orbin: Orbin):
    wf = orbin.create(
        {
            "name": "Bad repo",
            "slug": "bad-repo",
            "steps": [
                {"id": "issue", "name": "Issue", "type": "action",
                 "retryPolicy": {"maxAttempts": 1},
                 "config": {"action": "github.createIssue", "integration": "gh",
                            "repo": "no/such", "title": "x"}},
            ],
        }
    )  # fmt: skip
    run = orbin.wait(orbin.start(wf), seconds=90)
    assert run["status"] == "failed"
    assert "404 Not Found" in orbin.steps(run)["issue"]["error"]["message"]


def test_the_integration_is_a_prefect_block_a_deployed_code_flow_loads(
    orbin: Orbin, platform, providers
):
    deadline = time.monotonic() + 30
    while True:
        resp = httpx.post(
            f"{platform.prefect_api_url}/block_documents/filter",
            json={"block_documents": {"name": {"any_": ["demo-team"]}}},
            timeout=10,
        )
        if resp.json() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    (doc,) = resp.json()
    assert doc["block_type"]["slug"] == "orbin-slack"
    assert SLACK_TOKEN not in resp.text  # the server answers secret fields obfuscated

    # The demo workflow creates the demo organization's work pool on its first run.
    demo = orbin.call("POST", "/v1/events", json={"type": "demo.hello", "data": {}})
    assert orbin.wait(demo.json()["runIds"][0], seconds=90)["status"] == "completed"
    env = {**platform.env, "ORBIN_PROJECT_DIR": str(services.ROOT)}
    out = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "slack-code"],
        env=env,
        cwd=str(services.ROOT),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    wf = orbin.create(
        {"name": "Slack code", "slug": "slack-code", "deployment": "slack-code/slack-code"}
    )
    n = len(providers.calls_to("chat.postMessage"))
    run = orbin.wait(
        orbin.start(wf, {"block": "demo-team", "channel": "#code", "text": "from code"}),
        seconds=90,
    )
    assert run["status"] == "completed", run
    posts = providers.calls_to("chat.postMessage")[n:]
    assert posts and posts[-1].json()["text"] == "from code"


def test_no_credential_in_plain_text_under_orbin_home(orbin: Orbin, platform):
    home = Path(platform.home)
    leaks = subprocess.run(
        ["grep", "-rlaF", *sum((["-e", s] for s in SECRETS), []), str(home)],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert leaks == []
