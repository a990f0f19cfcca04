"""Workflows over the API: JSON or YAML specs, errors by path, versions, diff, rollback."""

from __future__ import annotations

import pytest

SPEC = {
    "name": "Welcome",
    "slug": "welcome",
    "trigger": {"type": "event", "config": {"eventType": "user.created"}},
    "steps": [
        {
            "id": "hello",
            "name": "Hello",
            "type": "action",
            "config": {"action": "transform", "output": {"to": "{{ trigger.data.email }}"}},
        }
    ],
}

YAML = """
name: Welcome YAML
slug: welcome-yaml
trigger:
  type: event
  config: {eventType: user.created}
steps:
  - id: hello
    name: Hello
    type: action
    config:
      action: transform
      output: {to: "{{ trigger.data.email }}", date: 2030-01-01}
"""

BAD_YAML = """
name: Broken
slug: broken
trigger: {type: manual}
steps:
  - {id: a, name: A, type: action, config: {action: transform}}
  - {id: b, name: B, type: action, config: {action: http, method: GET}}
  - id: c
    name: C
    type: delay
    config: {}
"""


@pytest.fixture
def org(make_org):
    return make_org("acme")


def _h(key: str, ctype: str = "application/json") -> dict[str, str]:
    return {"x-api-key": key, "content-type": ctype}


def test_create_from_json_or_yaml_is_a_draft_at_version_1(api, org) -> None:
    resp = api.post("/v1/workflows", json=SPEC, headers=_h(org.key))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "draft" and body["version"] == 1 and body["slug"] == "welcome"
    resp = api.post("/v1/workflows", content=YAML, headers=_h(org.key, "application/yaml"))
    assert resp.status_code == 201, resp.text
    assert resp.json()["steps"][0]["config"]["output"]["date"] == "2030-01-01"
    resp = api.post(
        "/v1/workflows", json={**SPEC, "slug": "live", "status": "active"}, headers=_h(org.key)
    )
    assert resp.json()["status"] == "active"
    assert api.post("/v1/workflows", json=SPEC, headers=_h(org.key)).status_code == 409


def test_invalid_specs_are_422_with_the_path_of_every_error(api, org) -> None:
    resp = api.post("/v1/workflows", content=BAD_YAML, headers=_h(org.key, "application/yaml"))
    assert resp.status_code == 422, resp.text
    details = {d["path"]: d["message"] for d in resp.json()["error"]["details"]}
    assert details["steps[1].config.url"] == "field required"
    assert "exactly one" in details["steps[2].config"]
    assert "steps[1].config.url: field required" in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        ("[1, 2]", "application/json", 422),
        ("42", "application/json", 422),
        ('{"name": ', "application/json", 400),
        ("name: [unclosed", "application/yaml", 400),
        ("- just\n- a list\n", "application/yaml", 422),
        ("a: &x [1]\nb: [*x, *x]\n", "application/yaml", 400),
        ("name: x\nslug: x\ntrigger: {type: manual}\nn: .nan\n", "application/yaml", 400),
        ('{"name": "x"}', "text/plain", 415),
        (
            '{"name": "x", "slug": "x", "trigger": {"type": "manual"}, "steps": 5}',
            "application/json",
            422,
        ),
    ],
)
def test_bad_bodies_get_a_clear_4xx(api, org, body, ctype, status) -> None:
    resp = api.post("/v1/workflows", content=body, headers=_h(org.key, ctype))
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["message"]


def test_schema_is_served_for_editors(api) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = api.get("/v1/workflows/schema").json()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(SPEC)) == []


def test_versions_diff_rollback_and_status_changes(api, org) -> None:
    wf = api.post("/v1/workflows", json=SPEC, headers=_h(org.key)).json()
    url = f"/v1/workflows/{wf['id']}"
    v2 = {**SPEC, "description": "now with a description"}
    v2["steps"] = [{**SPEC["steps"][0], "name": "Say hello"}]
    resp = api.put(url, json=v2, headers=_h(org.key))
    assert resp.status_code == 200 and resp.json()["version"] == 2
    listed = api.get(f"{url}/versions", headers=_h(org.key)).json()
    assert (listed["nextCursor"], listed["hasMore"]) == (None, False)
    versions = listed["data"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["spec"]["steps"][0]["name"] == "Say hello"
    assert versions[1]["spec"]["steps"][0]["name"] == "Hello"
    assert {v["workflowId"] for v in versions} == {wf["id"]}
    one = api.get(f"{url}/versions/1", headers=_h(org.key))
    assert one.status_code == 200 and one.json() == versions[1]
    assert api.get(f"{url}/versions/9", headers=_h(org.key)).status_code == 404

    diff = api.get(f"{url}/diff?from=1&to=2", headers=_h(org.key)).json()
    assert diff["changedFields"] == ["description", "steps"]
    assert '+      "name": "Say hello"' in diff["diff"]
    assert '-      "name": "Hello"' in diff["diff"]
    assert api.get(f"{url}/diff?from=1&to=9", headers=_h(org.key)).status_code == 404
    assert api.get(f"{url}/diff?from=x&to=2", headers=_h(org.key)).status_code == 422

    rolled = api.post(f"{url}/rollback", json={"version": 1}, headers=_h(org.key)).json()
    assert rolled["version"] == 3 and rolled["steps"][0]["name"] == "Hello"
    assert rolled.get("description") is None
    assert api.post(f"{url}/rollback", json={"version": 7}, headers=_h(org.key)).status_code == 404
    assert api.post(f"{url}/rollback", json={}, headers=_h(org.key)).status_code == 422

    assert api.post(f"{url}/activate", headers=_h(org.key)).json()["status"] == "active"
    assert api.post(f"{url}/pause", headers=_h(org.key)).json()["status"] == "paused"
    saved = api.put(url, json=SPEC, headers=_h(org.key)).json()
    assert saved["status"] == "paused", "saving keeps the status unless the body sets one"
    archived = api.delete(url, headers=_h(org.key))
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert api.get(url, headers=_h(org.key)).json()["status"] == "archived"
    assert api.post(f"{url}/runs", json={}, headers=_h(org.key)).status_code == 409
    assert len(api.get(f"{url}/versions", headers=_h(org.key)).json()["data"]) == 7
    pages, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        got = api.get(f"{url}/versions", params=params, headers=_h(org.key)).json()
        pages.append([v["version"] for v in got["data"]])
        if not got["hasMore"]:
            break
        cursor = got["nextCursor"]
    assert pages == [[7, 6, 5], [4, 3, 2], [1]]


def test_another_organizations_workflow_is_404_everywhere(api, make_org) -> None:
    mine = make_org("mine")
    other = make_org("other")
    wf = api.post("/v1/workflows", json=SPEC, headers=_h(mine.key)).json()
    url = f"/v1/workflows/{wf['id']}"
    h = _h(other.key)
    assert api.get(url, headers=h).status_code == 404
    assert api.put(url, json=SPEC, headers=h).status_code == 404
    assert api.delete(url, headers=h).status_code == 404
    assert api.get(f"{url}/versions", headers=h).status_code == 404
    assert api.get(f"{url}/versions/1", headers=h).status_code == 404
    assert api.get(f"{url}/diff?from=1&to=1", headers=h).status_code == 404
    assert api.post(f"{url}/rollback", json={"version": 1}, headers=h).status_code == 404
    assert api.post(f"{url}/activate", headers=h).status_code == 404
    assert api.post(f"{url}/runs", json={}, headers=h).status_code == 404
    assert api.get("/v1/workflows", headers=h).json()["data"] == []
