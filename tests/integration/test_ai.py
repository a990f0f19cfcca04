"""AI assistance on the running platform (``orbin up``), over HTTP, with the real ``openai``
SDK talking to a local OpenAI-protocol server: a generated spec repaired and saved, a failed
run diagnosed, and no secret (known or secret-looking) ever reaching the model server."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import services
from tests.support.openai_server import FakeOpenAI

BAD = {
    "spec": {
        "name": "Greeter",
        "slug": "ai-greeter",
        "trigger": {"type": "event", "config": {"eventType": "user.created"}},
        "steps": [
            {"id": "lookup", "name": "Look up", "type": "action", "config": {"action": "http"}}
        ],
    },
    "explanation": "x",
}
GOOD = {
    "spec": {
        **BAD["spec"],
        "steps": [
            {"id": "greet", "name": "Greet", "type": "action",
             "config": {"action": "transform", "output": {"hi": "{{ trigger.data.name }}"}}}
        ],
    },
    "explanation": "Greets each new user.",
}  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    f = FakeOpenAI()
    server, url = f.start()
    f.url = url  # type: ignore[attr-defined]
    yield f
    server.shutdown()


@pytest.fixture(scope="module")
def platform_ai(fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    p = services.start_platform(
        Path(tmp_path_factory.mktemp("orbin-ai")),
        extra_env={
            "OPENAI_API_KEY": "sk-integration-" + secrets.token_hex(8),
            "OPENAI_BASE_URL": fake.url,  # type: ignore[attr-defined]
            "ORBIN_AI_MODEL": "it-model",
        },
    )
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="module")
def client(platform_ai) -> Iterator[httpx.Client]:
    slug = f"ai-{uuid.uuid4().hex[:8]}"
    platform_ai.orbin("org", "create", "--slug", slug, "--plan", "pro")
    key = platform_ai.new_key(slug)
    with httpx.Client(base_url=platform_ai.api_url, headers={"x-api-key": key}, timeout=60) as c:
        c.key = key  # type: ignore[attr-defined]
        yield c


def test_generate_repairs_then_the_spec_saves(client: httpx.Client, fake: FakeOpenAI) -> None:
    fake.script(BAD, GOOD)
    resp = client.post("/v1/ai/workflows/generate", json={"prompt": "greet new users"})
    assert resp.status_code == 200, resp.text
    assert len(fake.seen) == 2 and "steps[0].config.url" in fake.seen[1].raw
    assert client.post("/v1/workflows", json=resp.json()["spec"]).status_code == 201


def test_diagnosis_of_a_failed_run_never_sends_a_secret(
    client: httpx.Client, fake: FakeOpenAI
) -> None:
    wf = client.post(
        "/v1/workflows",
        json={
            "name": "Broken",
            "slug": f"broken-{uuid.uuid4().hex[:6]}",
            "status": "active",
            "trigger": {"type": "webhook"},
            "steps": [
                {"id": "lookup", "name": "Look up", "type": "action",
                 "retryPolicy": {"maxAttempts": 1},
                 "config": {"action": "http", "method": "GET",
                            "url": "http://127.0.0.1:9/nothing?name={{ trigger.data.name }}"}}
            ],
        },
    ).json()  # fmt: skip
    provider_secret = "whsec_" + secrets.token_hex(12)
    put = client.put(f"/v1/workflows/{wf['id']}/webhook", json={"secret": provider_secret})
    assert put.status_code == 200, put.text
    password = "hunter2-" + secrets.token_hex(4)
    data = {
        "password": password,
        "note": f"signing with {provider_secret}",
        "header": f"Bearer {client.key}",  # type: ignore[attr-defined]
        "name": "Ada",
    }
    run = client.post(f"/v1/workflows/{wf['id']}/runs", json={"data": data}).json()
    for _ in range(120):
        st = client.get(f"/v1/runs/{run['runId']}").json()
        if st["status"] in ("failed", "completed", "timed_out", "canceled"):
            break
        time.sleep(0.5)
    assert st["status"] == "failed", st
    fake.script({"summary": "refused", "likelyCause": "nothing listens", "suggestedFix": "fix"})
    resp = client.post(f"/v1/ai/runs/{run['runId']}/diagnose")
    assert resp.status_code == 200, resp.text
    assert resp.json()["likelyCause"] == "nothing listens"
    sent = fake.everything_sent()
    assert "127.0.0.1:9" in sent and "Ada" in sent  # the facts go, the secrets do not
    for secret in (password, provider_secret, client.key):  # type: ignore[attr-defined]
        assert secret not in sent
    assert "[redacted]" in sent


def test_viewers_and_restricted_keys_may_not_use_ai(platform_ai, client: httpx.Client) -> None:
    slug = f"ai-rk-{uuid.uuid4().hex[:6]}"
    platform_ai.orbin("org", "create", "--slug", slug)
    rk = platform_ai.new_key(slug, "restricted", "--permission", "workflows:read")
    resp = httpx.post(
        platform_ai.api_url + "/v1/ai/workflows/generate",
        json={"prompt": "x"},
        headers={"x-api-key": rk},
    )
    assert resp.status_code == 403, resp.text
    assert "ai:use" in resp.json()["error"]["message"]
