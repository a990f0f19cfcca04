"""Bad input is a 4xx at the edge, on every route and both backends: a NUL character in a
path id, a query value or a JSON field, and integers beyond the database's range."""

from __future__ import annotations

import pytest

BAD = [
    ("GET", "/v1/runs/a%00b", None),
    ("GET", "/v1/events/a%00b", None),
    ("GET", "/v1/events?type=a%00b", None),
    ("GET", "/v1/runs?cursor=a%00b", None),
    ("GET", "/v1/runs?status=a%00b", None),
    ("GET", "/v1/workflows/a%00b", None),
    ("GET", "/v1/workflows?cursor=a%00b", None),
    ("GET", "/v1/events?since=9223372036854775808", None),
    ("GET", "/v1/events?since=99999999999999999999999", None),
    ("GET", "/v1/events?since=-9223372036854775809", None),
    ("GET", "/v1/runs?limit=99999999999999999999999", None),
    ("POST", "/v1/events/replay", {"ids": ["a\x00b"]}),
    ("POST", "/v1/hooks/a%00b", {}),
    ("POST", "/v1/events", {"type": "a\x00b", "data": {}}),
    ("POST", "/v1/events", {"type": "x", "data": {"k": "v\x00"}}),
    ("GET", "/v1/workflows/x/versions/1000000000000000000000000000000000000000", None),
    ("GET", "/v1/workflows/x/diff?from=1&to=1000000000000000000000000000000000000000", None),
    ("POST", "/v1/workflows/x/rollback", {"version": 10**40}),
    ("POST", "/v1/events", {"type": "x", "data": {"n": [1, 2**64]}}),
    ("POST", "/v1/events/replay", {"ids": ["a"], "n": -(2**63) - 1}),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD, ids=[f"{m} {p}" for m, p, _ in BAD])
def test_bad_input_is_a_4xx_never_a_5xx(api, make_org, method, path, body) -> None:
    org = make_org("edge")
    r = api.request(method, path, json=body, headers={"x-api-key": org.key})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert "error" in r.json()


def test_a_literal_backslash_u0000_is_not_a_nul_and_bodies_pass_unchanged(api, make_org) -> None:
    org = make_org("edge2")
    body = {"type": "edge.ok", "data": {"text": "\\u0000 is six characters", "n": 1}}
    r = api.post("/v1/events", json=body, headers={"x-api-key": org.key})
    assert r.status_code == 202, r.text
    got = api.get(f"/v1/events/{r.json()['id']}", headers={"x-api-key": org.key}).json()
    assert got["data"] == body["data"], got


def test_a_long_number_that_fits_is_not_refused(api, make_org) -> None:
    org = make_org("edge3")
    r = api.get("/v1/events?since=9223372036854775807", headers={"x-api-key": org.key})
    assert r.status_code == 200, r.text


def test_an_event_is_read_back_by_the_event_id_its_202_answered(api, make_org) -> None:
    org = make_org("edge4")
    h = {"x-api-key": org.key}
    for key in ("my-key-1", None):
        headers = {**h, "x-idempotency-key": key} if key else h
        r = api.post("/v1/events", json={"type": "t", "data": {}}, headers=headers)
        assert r.status_code == 202, r.text
        assert r.json()["eventId"] == r.json()["id"]
        got = api.get(f"/v1/events/{r.json()['eventId']}", headers=h)
        assert got.status_code == 200 and got.json()["id"] == r.json()["id"]
        assert got.json()["idempotencyKey"] == key
    other = make_org("edge5")
    assert (
        api.get(f"/v1/events/{r.json()['id']}", headers={"x-api-key": other.key}).status_code == 404
    )


def test_huge_versions_on_a_real_workflow_are_a_422(api, make_org) -> None:
    org = make_org("edge6")
    h = {"x-api-key": org.key}
    spec = {
        "name": "V",
        "slug": "v",
        "trigger": {"type": "manual"},
        "steps": [{"id": "a", "name": "A", "type": "action", "config": {"action": "transform"}}],
    }
    r = api.post("/v1/workflows", json=spec, headers=h)
    assert r.status_code == 201, r.text
    wf = r.json()["id"]
    big = 10**40
    r = api.post(f"/v1/workflows/{wf}/rollback", json={"version": big}, headers=h)
    assert r.status_code == 422 and "version" in r.text, r.text
    r = api.get(f"/v1/workflows/{wf}/diff?from=1&to={big}", headers=h)
    assert r.status_code == 422, r.text
    assert api.get(f"/v1/workflows/{wf}/diff?from=1&to=1", headers=h).status_code < 500
