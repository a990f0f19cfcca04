"""Event triggers, the events API, replay and dead letters, through the HTTP API (no Prefect:
ingestion and replay only write; the worker's dead-letter path is called directly)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import OrgWithKey


def H(org: OrgWithKey) -> dict[str, str]:  # noqa: N802
    return {"x-api-key": org.key}


def make_workflow(
    api: TestClient, org: OrgWithKey, slug: str, trigger: dict, status: str = "active"
) -> dict:
    spec = {
        "name": slug,
        "slug": slug,
        "status": status,
        "trigger": trigger,
        "steps": [
            {
                "id": "s",
                "name": "S",
                "type": "action",
                "config": {"action": "transform", "output": {}},
            }
        ],
    }
    resp = api.post("/v1/workflows", json=spec, headers=H(org))
    assert resp.status_code == 201, resp.text
    return resp.json()


def on_event(pattern: str, filter: dict | None = None) -> dict:
    config: dict[str, Any] = {"eventType": pattern}
    if filter:
        config["filter"] = filter
    return {"type": "event", "config": config}


def post_event(api: TestClient, org: OrgWithKey, type: str, data: dict, **kw: Any) -> Any:
    return api.post("/v1/events", json={"type": type, "data": data, **kw}, headers=H(org))


def test_one_event_starts_every_matching_workflow(api: TestClient, make_org) -> None:
    org = make_org("acme")
    exact = make_workflow(api, org, "exact", on_event("order.created"))
    pattern = make_workflow(api, org, "pattern", on_event("order.*"))
    gold = make_workflow(api, org, "gold", on_event("order.*", {"data.tier": ["gold", "vip"]}))
    make_workflow(api, org, "silver", on_event("order.created", {"data.tier": "silver"}))
    make_workflow(api, org, "refunds", on_event("refund.*"))
    make_workflow(api, org, "paused", on_event("order.created"), status="paused")

    resp = post_event(api, org, "order.created", {"tier": "gold", "total": 12})
    assert resp.status_code == 202, resp.text
    run_ids = resp.json()["runIds"]
    assert len(run_ids) == 3
    started = {api.get(f"/v1/runs/{r}", headers=H(org)).json()["workflowId"] for r in run_ids}
    assert started == {exact["id"], pattern["id"], gold["id"]}
    run = api.get(f"/v1/runs/{run_ids[0]}", headers=H(org)).json()
    assert run["triggerType"] == "event" and run["triggerData"]["data"]["tier"] == "gold"

    only_pattern = post_event(api, org, "order.shipped", {"tier": "bronze"}).json()["runIds"]
    assert [
        api.get(f"/v1/runs/{r}", headers=H(org)).json()["workflowId"] for r in only_pattern
    ] == [pattern["id"]]
    assert post_event(api, org, "invoice.paid", {}).json()["runIds"] == []


def test_events_list_filters_and_pages(api: TestClient, make_org) -> None:
    org, other = make_org("acme"), make_org("other")
    make_workflow(api, org, "orders", on_event("order.*"))
    for i, (etype, source) in enumerate(
        [
            ("order.created", "shop"),
            ("order.paid", "shop"),
            ("orders.archive", "batch"),
            ("user.signup", "web"),
            ("order.created", "pos"),
        ]
    ):
        assert post_event(api, org, etype, {"n": i}, source=source).status_code == 202
    post_event(api, other, "order.created", {"secret": True})

    def types(**params: Any) -> list[str]:
        resp = api.get("/v1/events", params=params, headers=H(org))
        assert resp.status_code == 200, resp.text
        return [e["type"] for e in resp.json()["data"]]

    assert types(type="order.*") == ["order.created", "order.paid", "order.created"]
    assert types(type="order.created") == ["order.created", "order.created"]
    assert types(type="order.created", source="pos") == ["order.created"]
    assert types(source="batch") == ["orders.archive"]
    assert types(status="processed") == ["user.signup", "orders.archive"]  # nothing to start
    assert len(types(status="pending")) == 3
    assert types(type="nothing.*") == []

    everything = api.get("/v1/events", params={"limit": 200}, headers=H(org)).json()["data"]
    assert len(everything) == 5, "another organization's event is never listed"
    created = sorted(e["receivedAt"] for e in everything)
    assert len(types(since=created[2])) >= 3
    assert types(until=created[0]) == []
    assert len(types(since=created[0], until=created[-1] + 1)) == 5

    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/events", params=params, headers=H(org)).json()
        seen += [e["id"] for e in page["data"]]
        if not page["hasMore"]:
            assert page["nextCursor"] is None
            break
        cursor = page["nextCursor"]
    assert seen == [e["id"] for e in everything], "pages: newest first, no gap, no repeat"

    bad = api.get("/v1/events", params={"status": "lost"}, headers=H(org))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


def test_event_detail_shows_payload_and_runs_and_is_tenant_scoped(
    api: TestClient, make_org
) -> None:
    org, other = make_org("acme"), make_org("other")
    make_workflow(api, org, "a", on_event("order.*"))
    make_workflow(api, org, "b", on_event("order.paid"))
    post_event(api, org, "order.paid", {"total": 3})
    event = api.get("/v1/events", headers=H(org)).json()["data"][0]
    detail = api.get(f"/v1/events/{event['id']}", headers=H(org)).json()
    assert detail["data"] == {"total": 3}
    assert sorted(r["id"] for r in detail["runs"]) == sorted(detail["runIds"])
    assert len(detail["runs"]) == 2 and all(r["eventId"] == event["id"] for r in detail["runs"])
    for method, path in [
        ("get", f"/v1/events/{event['id']}"),
        ("post", f"/v1/events/{event['id']}/replay"),
        ("post", f"/v1/dead-letters/{event['id']}/retry"),
        ("post", f"/v1/dead-letters/{event['id']}/discard"),
    ]:
        resp = api.request(method, path, headers=H(other))
        assert resp.status_code == 404, (path, resp.text)
    resp = api.post("/v1/events/replay", json={"ids": [event["id"]]}, headers=H(other))
    assert resp.status_code == 404


def test_replay_starts_new_linked_runs_and_is_audited(api: TestClient, make_org) -> None:
    from tenancy.audit import read_audit_logs
    from tenancy.db import session_scope

    org = make_org("acme")
    make_workflow(api, org, "a", on_event("order.*"))
    first = post_event(api, org, "order.paid", {"n": 1}).json()["runIds"]
    event = api.get("/v1/events", headers=H(org)).json()["data"][0]

    resp = api.post(f"/v1/events/{event['id']}/replay", headers=H(org))
    assert resp.status_code == 200, resp.text
    replayed = resp.json()
    assert len(replayed["startedRunIds"]) == 1 and replayed["startedRunIds"] != first
    assert replayed["runIds"] == first + replayed["startedRunIds"]
    run = api.get(f"/v1/runs/{replayed['startedRunIds'][0]}", headers=H(org)).json()
    assert run["eventId"] == event["id"] and run["triggerData"]["data"] == {"n": 1}
    assert run["triggerData"]["replay"]["action"] == "replayed"
    detail = api.get(f"/v1/events/{event['id']}", headers=H(org)).json()
    assert len(detail["runs"]) == 2 and set(detail["runIds"]) == set(replayed["runIds"])
    with session_scope() as session:
        actions = [a.action for a in read_audit_logs(session, organization_id=org.id)]
    assert "event.replayed" in actions

    viewer = add_key(org, "restricted", ["events:read"])
    assert api.post(f"/v1/events/{event['id']}/replay", headers=H(viewer)).status_code == 403


def test_replay_many_by_ids_and_by_filter(api: TestClient, make_org) -> None:
    org = make_org("acme")
    make_workflow(api, org, "orders", on_event("order.*"))
    for i in range(3):
        post_event(api, org, "order.paid", {"n": i})
    post_event(api, org, "user.signup", {})
    ids = [e["id"] for e in api.get("/v1/events", headers=H(org)).json()["data"]]

    resp = api.post("/v1/events/replay", json={"ids": ids[:2]}, headers=H(org))
    assert resp.status_code == 200, resp.text
    assert resp.json()["count"] == 2
    by_filter = api.post(
        "/v1/events/replay", json={"filter": {"type": "order.*"}, "limit": 10}, headers=H(org)
    ).json()
    assert by_filter["count"] == 3 and by_filter["runCount"] == 3
    assert [d["id"] for d in by_filter["data"]] == sorted(d["id"] for d in by_filter["data"])
    for body in [{}, {"ids": []}, {"ids": ids, "filter": {"type": "x"}}, {"filter": {"nope": 1}}]:
        bad = api.post("/v1/events/replay", json=body, headers=H(org))
        assert bad.status_code == 422, (body, bad.text)
    missing = api.post("/v1/events/replay", json={"ids": [ids[0], "nope"]}, headers=H(org))
    assert missing.status_code == 404


def test_monthly_limit_makes_a_dead_letter_that_can_be_retried(api: TestClient, make_org) -> None:
    from sqlalchemy import update

    from tenancy.db import session_scope
    from tenancy.models import Organization

    org = make_org("acme")
    make_workflow(api, org, "orders", on_event("order.*"))
    with session_scope() as session:
        session.execute(
            update(Organization)
            .where(Organization.id == org.id)
            .values(usage_limit_executions=1, usage_current_executions=1, usage_reset_at=2**50)
        )
    resp = post_event(api, org, "order.paid", {"n": 1})
    assert resp.status_code == 429, resp.text
    assert "monthly execution limit" in resp.json()["error"]["message"]
    post_event(api, org, "order.paid", {"n": 2})

    dead = api.get("/v1/dead-letters", headers=H(org)).json()["data"]
    assert len(dead) == 2 and all("monthly execution limit" in d["error"] for d in dead)
    assert dead == api.get("/v1/events", params={"status": "failed"}, headers=H(org)).json()["data"]

    retry = api.post(f"/v1/dead-letters/{dead[0]['id']}/retry", headers=H(org))
    assert retry.status_code == 429, "still over the limit: nothing changes"
    with session_scope() as session:
        session.execute(
            update(Organization).where(Organization.id == org.id).values(usage_limit_executions=10)
        )
    retried = api.post(f"/v1/dead-letters/{dead[0]['id']}/retry", headers=H(org)).json()
    assert retried["status"] == "pending" and len(retried["startedRunIds"]) == 1
    event = api.get(f"/v1/events/{dead[0]['id']}", headers=H(org)).json()
    assert event["error"] is None and event["runs"][0]["id"] == retried["startedRunIds"][0]

    discarded = api.post(f"/v1/dead-letters/{dead[1]['id']}/discard", headers=H(org))
    assert discarded.status_code == 200 and discarded.json()["status"] == "discarded"
    kept = api.get(f"/v1/events/{dead[1]['id']}", headers=H(org)).json()
    assert kept["status"] == "discarded" and "monthly execution limit" in kept["error"]
    assert api.get("/v1/dead-letters", headers=H(org)).json()["data"] == []
    again = api.post(f"/v1/dead-letters/{dead[1]['id']}/discard", headers=H(org))
    assert again.status_code == 409 and "not failed" in again.json()["error"]["message"]


def test_a_run_that_cannot_start_makes_its_event_a_dead_letter(api: TestClient, make_org) -> None:
    from orbin_flows.runtime.worker import Worker
    from tenancy import outbox as outbox_repo
    from tenancy.db import session_scope

    org = make_org("acme")
    make_workflow(api, org, "a", on_event("order.*"))
    b = make_workflow(api, org, "b", on_event("order.paid"))
    run_ids = post_event(api, org, "order.paid", {}).json()["runIds"]
    with session_scope() as session:
        items = outbox_repo.claim_outbox(session, worker_id="t", limit=10, lease_ms=30_000)
    broken = next(
        i
        for i in items
        if api.get(f"/v1/runs/{i.run_id}", headers=H(org)).json()["workflowId"] == b["id"]
    )
    Worker()._dead_letter(broken, RuntimeError("the deployment is gone"))

    dead = api.get("/v1/dead-letters", headers=H(org)).json()["data"]
    assert len(dead) == 1
    assert dead[0]["error"] == "could not start: RuntimeError: the deployment is gone"
    failed_run = api.get(f"/v1/runs/{broken.run_id}", headers=H(org)).json()
    assert failed_run["status"] == "failed"

    retried = api.post(f"/v1/events/{dead[0]['id']}/retry", headers=H(org)).json()
    assert len(retried["startedRunIds"]) == 1, (
        "only the workflow whose run never started runs again"
    )
    new_run = api.get(f"/v1/runs/{retried['startedRunIds'][0]}", headers=H(org)).json()
    assert new_run["workflowId"] == b["id"] and new_run["id"] not in run_ids


def test_manual_trigger_starts_a_run_with_the_payload(api: TestClient, make_org) -> None:
    org, other = make_org("acme"), make_org("other")
    wf = make_workflow(api, org, "manual", {"type": "manual"})
    resp = api.post(f"/v1/workflows/{wf['id']}/runs", json={"data": {"x": 1}}, headers=H(org))
    assert resp.status_code == 202, resp.text
    run = api.get(f"/v1/runs/{resp.json()['runId']}", headers=H(org)).json()
    assert run["triggerType"] == "manual" and run["triggerData"]["data"] == {"x": 1}
    assert run["status"] == "pending"
    assert api.post(f"/v1/workflows/{wf['id']}/runs", json={}, headers=H(other)).status_code == 404
    bad = api.post(f"/v1/workflows/{wf['id']}/runs", json={"data": [1]}, headers=H(org))
    assert bad.status_code == 422


def add_key(org: OrgWithKey, type: str, permissions: list[str] | None = None) -> OrgWithKey:
    from tenancy.db import session_scope
    from tenancy.keys import create_api_key

    with session_scope() as session:
        key = create_api_key(
            session, organization_id=org.id, name=type, type=type, permissions=permissions
        )
    return OrgWithKey(org.id, org.slug, key.plaintext)


def test_keys_without_the_rights_cannot_replay_or_discard(api: TestClient, make_org) -> None:
    org = make_org("acme")
    publishable = add_key(org, "publishable")
    reader = add_key(org, "restricted", ["events:read"])
    assert post_event(api, publishable, "x.y", {}).status_code == 202
    event = api.get("/v1/events", headers=H(org)).json()["data"][0]
    for key in (publishable, reader):
        for path in (f"/v1/events/{event['id']}/replay", f"/v1/dead-letters/{event['id']}/discard"):
            resp = api.post(path, headers=H(key))
            assert resp.status_code == 403, (path, resp.text)
    resp = api.post("/v1/events/replay", json={"filter": {"type": "x.*"}}, headers=H(reader))
    assert resp.status_code == 403 and "runs:write" in resp.json()["error"]["message"]
