"""A spec whose templates name a step that does not exist, or one that has not run yet, is a
422 at save time naming the path (issue 10), not a failure at run time. SQLite and PostgreSQL
for the API; the validator alone for the scope rules."""

from __future__ import annotations

from typing import Any

import pytest

from orbin_flows.spec import validate_spec
from tenancy.errors import InvalidInput


def step(step_id: str, output: Any = None, **config: Any) -> dict[str, Any]:
    cfg = {"action": "transform", "output": output if output is not None else {}, **config}
    return {"id": step_id, "name": step_id, "type": "action", "config": cfg}


def spec(*steps: dict[str, Any], slug: str = "refs") -> dict[str, Any]:
    return {"name": "Refs", "slug": slug, "trigger": {"type": "manual"}, "steps": list(steps)}


def errors(*steps: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        validate_spec(spec(*steps))
    except InvalidInput as exc:
        return [(d["path"], d["message"]) for d in exc.details]
    return []


def test_earlier_steps_may_be_read_anywhere_in_a_value() -> None:
    assert (
        errors(
            step("a", {"x": 1}),
            step("b", {"y": "{{ steps.a.output.x }}", "z": ["Hi {{ steps['a'].output.x }}"]}),
            step("c", {"n": "{{ steps.b.output.y + 1 }}", "t": "{{ trigger.data.name }}"}),
        )
        == []
    )


def test_a_missing_a_later_and_its_own_step_are_refused_by_path() -> None:
    got = errors(
        step("a", {"early": "{{ steps.b.output }}"}),
        step("b", {"list": [1, {"deep": "{{ steps.zzz.output.y }}"}]}),
        step("c", {"me": "{{ steps.c.output }}"}),
    )
    assert got == [
        ("steps[0].config.output.early", "names step 'b', which runs after this one"),
        (
            "steps[1].config.output.list[1].deep",
            "names step 'zzz', which does not exist in this workflow",
        ),
        (
            "steps[2].config.output.me",
            "names its own step 'c': its output exists only after it ran",
        ),
    ]


def test_conditions_and_loops_have_scopes() -> None:
    cond = {
        "id": "big",
        "name": "Big?",
        "type": "condition",
        "config": {
            "expression": "steps.a.output.n > 1 and steps.later.output",
            "then": [step("yes", {"v": "{{ steps.a.output.n }}"})],
            "else": [step("no", {"v": "{{ steps.yes.output }} {{ steps.big.output }}"})],
        },
    }
    loop = {
        "id": "each",
        "name": "Each",
        "type": "loop",
        "config": {
            "items": "{{ steps.a.output.items }}",
            "steps": [step("shape", {"i": "{{ item }}"}), step("use", "{{ steps.shape.output }}")],
        },
    }
    got = errors(
        step("a", {"n": 2, "items": [1]}),
        cond,
        loop,
        step("after", {"branch": "{{ steps.yes.output }}", "inner": "{{ steps.shape.output }}"}),
        step("later"),
    )
    assert [path for path, _ in got] == [
        "steps[1].config.expression",
        "steps[1].config.else[0].config.output.v",
        "steps[1].config.else[0].config.output.v",
        "steps[3].config.output.inner",
    ]
    assert "'later', which runs after" in got[0][1]
    assert "another branch" in got[1][1] and "'yes'" in got[1][1]
    assert "'big', which contains this one" in got[2][1]
    assert "inside a loop" in got[3][1] and "'shape'" in got[3][1]


@pytest.fixture
def org(make_org):
    return make_org("acme")


def test_saving_a_bad_reference_is_422_on_create_update_and_new_version(api, org) -> None:
    h = {"x-api-key": org.key}
    bad = spec(step("a"), step("b", {"y": "{{ steps.zzz.output.y }}"}))
    created = api.post("/v1/workflows", json=bad, headers=h)
    assert created.status_code == 422, created.text
    err = created.json()["error"]
    assert "steps[1].config.output.y" in err["message"] and "'zzz'" in err["message"]
    assert {"path": "steps[1].config.output.y", "message": err["details"][0]["message"]} in err[
        "details"
    ]
    yaml = "name: Y\nslug: y\ntrigger: {type: manual}\nsteps:\n" + (
        "  - {id: a, name: A, type: action, config: {action: transform, "
        "output: {v: '{{ steps.b.output }}'}}}\n"
        "  - {id: b, name: B, type: action, config: {action: transform, output: {}}}\n"
    )
    as_yaml = api.post(
        "/v1/workflows", content=yaml, headers={**h, "content-type": "application/yaml"}
    )
    assert as_yaml.status_code == 422 and "runs after this one" in as_yaml.text

    good = api.post("/v1/workflows", json=spec(step("a"), step("b")), headers=h)
    assert good.status_code == 201, good.text
    url = f"/v1/workflows/{good.json()['id']}"
    later = spec(step("a", {"v": "{{ steps.b.output }}"}), step("b"))
    updated = api.put(url, json=later, headers=h)
    assert updated.status_code == 422 and "steps[0].config.output.v" in updated.text
    versions = api.get(f"{url}/versions", headers=h).json()["data"]
    assert [v["version"] for v in versions] == [1], "nothing was saved"


def test_an_ai_proposal_naming_a_missing_step_is_sent_back_with_the_path(
    api, org, monkeypatch
) -> None:
    from tests.support.openai_server import FakeOpenAI

    fake = FakeOpenAI()
    server, url = fake.start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-config-key-123456789")
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        monkeypatch.setenv("ORBIN_AI_MAX_RETRIES", "1")
        proposal = spec(step("greet", {"hi": "{{ steps.lookup.output.name }}"}), slug="ai")
        fixed = spec(step("greet", {"hi": "{{ trigger.data.name }}"}), slug="ai")
        fake.script({"spec": proposal, "explanation": "x"}, {"spec": fixed, "explanation": "y"})
        resp = api.post(
            "/v1/ai/workflows/generate", json={"prompt": "greet"}, headers={"x-api-key": org.key}
        )
        assert resp.status_code == 200, resp.text
        repair = fake.seen[1].body["messages"][-1]["content"]
        assert "steps[0].config.output.hi" in repair and "'lookup'" in repair
    finally:
        server.shutdown()
