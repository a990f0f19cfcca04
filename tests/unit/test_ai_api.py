"""AI routes in-process, the real ``openai`` SDK against a local OpenAI-protocol server:
repairs, errors, permissions, rate limit, usage, redaction."""

from __future__ import annotations

import json

import pytest

from tests.support.openai_server import FakeOpenAI, Reply

BAD = {
    "spec": {
        "name": "Greeter",
        "slug": "ai-greeter",
        "trigger": {"type": "event", "config": {"eventType": "user.created"}},
        "steps": [
            {"id": "lookup", "name": "Look up", "type": "action", "config": {"action": "http"}}
        ],
    },
    "explanation": "Looks the user up.",
}
GOOD = {
    "spec": {
        "name": "Greeter",
        "slug": "ai-greeter",
        "status": "active",
        "trigger": {"type": "event", "config": {"eventType": "user.created"}},
        "steps": [
            {
                "id": "greet",
                "name": "Greet",
                "type": "action",
                "config": {"action": "transform", "output": {"hi": "{{ trigger.data.name }}"}},
            }
        ],
    },
    "explanation": "Greets each new user.",
}
DIAG = {"summary": "s", "likelyCause": "c", "suggestedFix": "f"}


@pytest.fixture(scope="module")
def fake():
    f = FakeOpenAI()
    server, url = f.start()
    f.url = url  # type: ignore[attr-defined]
    yield f
    server.shutdown()


@pytest.fixture
def ai_env(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-config-key-123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
    monkeypatch.setenv("ORBIN_AI_MODEL", "test-model")
    monkeypatch.setenv("ORBIN_AI_MAX_RETRIES", "1")
    return fake


@pytest.fixture
def org(make_org):
    return make_org("acme")


def _h(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def _wf(api, key: str, **over) -> dict:
    spec = {**GOOD["spec"], "slug": "greeter", **over}
    resp = api.post("/v1/workflows", json=spec, headers=_h(key))
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_without_a_key_the_routes_say_what_to_set(api, org, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    resp = api.post("/v1/ai/workflows/generate", json={"prompt": "x"}, headers=_h(org.key))
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "ai_not_configured"
    assert "OPENAI_API_KEY" in resp.json()["error"]["message"]
    st = api.get("/v1/ai/status", headers=_h(org.key)).json()
    assert st["enabled"] is False and "OPENAI_API_KEY" in st["hint"]


def test_an_invalid_spec_is_repaired_with_its_errors_and_tokens_are_metered(
    api, org, ai_env
) -> None:
    ai_env.script(BAD, GOOD)
    resp = api.post(
        "/v1/ai/workflows/generate", json={"prompt": "greet new users"}, headers=_h(org.key)
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert len(ai_env.seen) == 2
    repair = ai_env.seen[1].body["messages"][-1]["content"]
    assert "steps[0].config.url" in repair
    assert ai_env.seen[0].auth == "Bearer sk-test-config-key-123456789"
    assert ai_env.seen[0].body["model"] == "test-model"
    assert ai_env.seen[0].body["response_format"] == {"type": "json_object"}
    assert body["spec"]["status"] == "draft" and body["warnings"]
    assert body["explanation"] == "Greets each new user."
    saved = api.post("/v1/workflows", json=body["spec"], headers=_h(org.key))
    assert saved.status_code == 201, saved.text
    usage = api.get("/v1/ai/usage", headers=_h(org.key)).json()
    assert usage["totals"]["modelRequests"] == 2
    assert usage["totals"]["promptTokens"] == 200 and usage["totals"]["totalTokens"] == 300
    assert usage["byFeature"][0]["feature"] == "generate"


def test_still_invalid_after_two_repairs_is_422_with_the_errors(api, org, ai_env) -> None:
    ai_env.script("this is not json", {"spec": "nope"}, BAD)
    resp = api.post("/v1/ai/workflows/generate", json={"prompt": "x"}, headers=_h(org.key))
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "ai_answer_invalid"
    assert any("url" in d["path"] for d in err["details"])
    assert len(ai_env.seen) == 3
    assert "not JSON" in ai_env.seen[1].body["messages"][-1]["content"]


def test_a_fenced_answer_is_read(api, org, ai_env) -> None:
    ai_env.script("```json\n" + json.dumps(GOOD) + "\n```")
    resp = api.post("/v1/ai/workflows/generate", json={"prompt": "x"}, headers=_h(org.key))
    assert resp.status_code == 200, resp.text


def test_streamed_and_responses_answers(api, org, ai_env, monkeypatch) -> None:
    monkeypatch.setenv("ORBIN_AI_STREAM", "true")
    ai_env.script(GOOD)
    resp = api.post("/v1/ai/workflows/generate", json={"prompt": "x"}, headers=_h(org.key))
    assert resp.status_code == 200, resp.text
    assert ai_env.seen[0].body["stream"] is True
    monkeypatch.setenv("ORBIN_AI_API", "responses")
    ai_env.script(GOOD)
    resp = api.post("/v1/ai/workflows/generate", json={"prompt": "x"}, headers=_h(org.key))
    assert resp.status_code == 200, resp.text
    assert ai_env.seen[0].path.endswith("/responses")
    usage = api.get("/v1/ai/usage", headers=_h(org.key)).json()
    assert usage["totals"]["promptTokens"] == 200


def test_structured_output_asks_for_the_answer_schema(api, org, ai_env, monkeypatch) -> None:
    monkeypatch.setenv("ORBIN_AI_STRUCTURED", "true")
    ai_env.script(GOOD)
    resp = api.post("/v1/ai/workflows/generate", json={"prompt": "x"}, headers=_h(org.key))
    assert resp.status_code == 200, resp.text
    fmt = ai_env.seen[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "orbin_generate"
    assert fmt["json_schema"]["schema"]["required"] == ["spec", "explanation"]


def test_upstream_errors_are_retried_then_503(api, org, ai_env) -> None:
    ai_env.script(Reply(status=429), GOOD)
    resp = api.post("/v1/ai/workflows/generate", json={"prompt": "x"}, headers=_h(org.key))
    assert resp.status_code == 200, resp.text
    assert len(ai_env.seen) == 2
    ai_env.script(Reply(status=500))
    resp = api.post("/v1/ai/workflows/generate", json={"prompt": "x"}, headers=_h(org.key))
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "ai_upstream_error"
    assert "500" in resp.json()["error"]["message"]
    assert len(ai_env.seen) == 2  # one retry (ORBIN_AI_MAX_RETRIES=1)


def test_a_server_without_json_mode_is_asked_for_plain_json(api, org, ai_env) -> None:
    ai_env.script(Reply(status=400), GOOD)
    resp = api.post("/v1/ai/workflows/generate", json={"prompt": "x"}, headers=_h(org.key))
    assert resp.status_code == 200, resp.text
    assert "response_format" in ai_env.seen[0].body
    assert "response_format" not in ai_env.seen[1].body


def test_the_org_rate_limit_answers_429(api, org, ai_env, monkeypatch) -> None:
    monkeypatch.setenv("ORBIN_AI_REQUESTS_PER_MINUTE", "2")
    ai_env.script(GOOD)
    codes = [
        api.post("/v1/ai/workflows/generate", json={"prompt": "x"}, headers=_h(org.key))
        for _ in range(3)
    ]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].json()["error"]["code"] == "ai_rate_limited"
    assert int(codes[2].headers["Retry-After"]) >= 1
    assert len(ai_env.seen) == 2
    assert api.get("/v1/ai/usage", headers=_h(org.key)).json()["totals"]["refused"] == 1


def test_keys_without_ai_use_are_refused_and_other_orgs_objects_are_404(
    api, org, make_org, ai_env
) -> None:
    ai_env.script(DIAG)
    rk = make_org("readonly", key_type="restricted", permissions=["workflows:read"])
    resp = api.post("/v1/ai/workflows/generate", json={"prompt": "x"}, headers=_h(rk.key))
    assert resp.status_code == 403
    wf = _wf(api, org.key)
    other = make_org("other")
    for path in (f"/v1/ai/workflows/{wf['id']}/suggest", f"/v1/ai/workflows/{wf['id']}/optimize"):
        assert api.post(path, headers=_h(other.key)).status_code == 404
    assert not ai_env.seen


def test_suggestions_are_valid_steps_placed_after_the_given_one(api, org, ai_env) -> None:
    wf = _wf(api, org.key)
    dup = {"steps": [{"step": {**GOOD["spec"]["steps"][0]}, "reason": "again"}]}
    ok = {
        "steps": [
            {
                "step": {"id": "notify", "name": "Notify", "type": "action",
                         "config": {"action": "emit", "type": "user.greeted"}},
                "reason": "tell others",
            }
        ]
    }  # fmt: skip
    ai_env.script(dup, ok)
    resp = api.post(
        f"/v1/ai/workflows/{wf['id']}/suggest", json={"after": "greet"}, headers=_h(org.key)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["steps"][0]["step"]["id"] == "notify"
    assert "duplicate step id" in ai_env.seen[1].body["messages"][-1]["content"]
    bad = api.post(
        f"/v1/ai/workflows/{wf['id']}/suggest", json={"after": "nope"}, headers=_h(org.key)
    )
    assert bad.status_code == 422


def test_optimize_patches_are_validated_against_the_spec(api, org, ai_env) -> None:
    wf = _wf(api, org.key)
    broken = {
        "suggestions": [
            {
                "title": "t",
                "detail": "d",
                "specPatch": [{"op": "replace", "path": "/steps/0/type", "value": "bogus"}],
            }
        ]
    }
    fine = {"suggestions": [{"title": "Retry", "detail": "add retries",
            "specPatch": [{"op": "add", "path": "/steps/0/retryPolicy",
                           "value": {"maxAttempts": 3}}]}]}  # fmt: skip
    ai_env.script(broken, fine)
    resp = api.post(f"/v1/ai/workflows/{wf['id']}/optimize", headers=_h(org.key))
    assert resp.status_code == 200, resp.text
    assert resp.json()["suggestions"][0]["specPatch"][0]["path"] == "/steps/0/retryPolicy"
    assert "specPatch" in ai_env.seen[1].body["messages"][-1]["content"]


def test_a_run_that_did_not_fail_is_not_diagnosed(api, org, ai_env) -> None:
    wf = _wf(api, org.key)
    run = api.post(f"/v1/workflows/{wf['id']}/runs", json={"data": {}}, headers=_h(org.key))
    resp = api.post(f"/v1/ai/runs/{run.json()['runId']}/diagnose", headers=_h(org.key))
    assert resp.status_code == 409
    assert api.post("/v1/ai/runs/nope/diagnose", headers=_h(org.key)).status_code == 404


def test_known_secrets_are_the_org_webhook_roots_and_integration_credentials(org) -> None:
    from tenancy import crypto
    from tenancy.db import session_scope
    from tenancy.known_secrets import read_known_secrets
    from tenancy.models import Integration
    from tenancy.webhook_secrets import ensure_root_secret

    with session_scope() as session:
        root = ensure_root_secret(session, organization_id=org.id)
        creds = json.dumps({"token": "xoxb-integration-token-42", "team": "T1"})
        session.add(
            Integration(
                organization_id=org.id,
                provider="slack",
                name="s",
                credentials=crypto.encrypt(creds),
            )
        )
        session.flush()
        known = read_known_secrets(session, organization_id=org.id)
    assert root in known and "xoxb-integration-token-42" in known
    assert "T1" not in known  # too short to be told apart from ordinary text


def _failed_run(api, org, data: dict) -> str:
    from tenancy import runs as repo
    from tenancy import steps as steps_repo
    from tenancy.db import session_scope

    wf = _wf(api, org.key)
    run_id = api.post(
        f"/v1/workflows/{wf['id']}/runs", json={"data": data}, headers=_h(org.key)
    ).json()["runId"]
    with session_scope() as session:
        run = repo.read_run(session, organization_id=org.id, run_id=run_id)
        step = steps_repo.start_step(
            session, run=run, step_id="greet", step_name="Greet", step_type="action",
            attempt=1, max_attempts=1, input=data,
        )  # fmt: skip
        err = {"type": "TemplateError", "message": "name is undefined"}
        steps_repo.finish_step(session, step=step, status="failed", error=err)
        repo.finish_run(session, run=run, status="failed", error=err)
    return run_id


def test_a_diagnosis_patch_must_leave_the_spec_valid(api, org, ai_env) -> None:
    run_id = _failed_run(api, org, {"token": "tok-" + "z" * 20, "name": None})
    bad = {**DIAG, "specPatch": [{"op": "remove", "path": "/trigger"}]}
    good = {
        **DIAG,
        "specPatch": [{"op": "replace", "path": "/steps/0/name", "value": "Greet safely"}],
    }
    ai_env.script(bad, good)
    resp = api.post(f"/v1/ai/runs/{run_id}/diagnose", headers=_h(org.key))
    assert resp.status_code == 200, resp.text
    assert resp.json()["specPatch"] == good["specPatch"]
    first = ai_env.seen[0].raw
    assert "name is undefined" in first and "tok-" + "z" * 20 not in first
    assert "trigger" in ai_env.seen[1].body["messages"][-1]["content"]
