"""Event ingestion through the API: the single-event contract, batches, idempotency, bad input.

Runs on SQLite and on PostgreSQL (when it answers), in-process (no Prefect: ingestion never
waits on it).
"""

from __future__ import annotations

import json

import pytest

from tests.unit.ingest_support import active_workflow, set_usage_limit, stored_events, stored_runs


def test_single_event_contract_and_idempotent_replay(api, make_org) -> None:
    org = make_org("acme")
    active_workflow(org.id, "order.created")
    h = {"x-api-key": org.key}

    r = api.post("/v1/events", headers=h, json={"type": "order.created", "data": {"n": 1}})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["received"] is True and len(body["runIds"]) == 1
    assert r.headers["x-ratelimit-limit"] == "100"

    keyed = {**h, "x-idempotency-key": "order-1"}
    first = api.post("/v1/events", headers=keyed, json={"type": "order.created", "data": {"n": 2}})
    again = api.post("/v1/events", headers=keyed, json={"data": {"n": 2}, "type": "order.created"})
    assert first.status_code == again.status_code == 202
    assert first.content == again.content  # byte for byte
    keyed_id = first.json()["id"]
    assert first.json()["eventId"] == keyed_id != "order-1"
    assert first.json()["idempotencyKey"] == "order-1" and body["idempotencyKey"] is None
    assert first.json()["type"] == "order.created" and first.json()["source"] == "api"
    assert isinstance(first.json()["receivedAt"], int)

    # The same key for a different event: refused, naming the original, which is kept.
    other = api.post("/v1/events", headers=keyed, json={"type": "order.created", "data": {"n": 3}})
    assert other.status_code == 409, other.text
    err = other.json()["error"]
    assert err["code"] == "conflict" and "idempotency key" in err["message"]
    assert err["details"][0]["id"] == keyed_id and keyed_id in err["message"]

    events = stored_events(org.id)
    assert len(events) == 2
    assert {e.id for e in events} == {body["id"], keyed_id}
    assert next(e for e in events if e.id == keyed_id).payload == {"n": 2}
    assert len(stored_runs(org.id)) == 2

    # The PRD's path answers the same way; its source defaults to "webhook".
    w = api.post("/api/webhooks/ingest", headers=h, json={"type": "nomatch", "data": {}})
    assert w.status_code == 202 and w.json()["runIds"] == []
    stored = {e.id: e for e in stored_events(org.id)}
    assert stored[w.json()["id"]].source == "webhook"
    assert stored[w.json()["id"]].status == "processed"


def test_the_id_answered_is_the_id_every_route_takes(api, make_org) -> None:
    """Issue 10: with x-idempotency-key: order-42 the 202 said eventId "order-42", which
    GET /v1/events/{id} and replay did not accept. The id is the event's own; the key is
    idempotencyKey, and finds the event through the list's filter."""
    org = make_org("ids")
    active_workflow(org.id, "order.created")
    h = {"x-api-key": org.key}
    sent = api.post(
        "/v1/events",
        headers={**h, "x-idempotency-key": "order-42"},
        json={"type": "order.created", "data": {"n": 1}},
    ).json()
    event_id = sent["id"]
    assert sent["eventId"] == event_id and sent["idempotencyKey"] == "order-42"

    got = api.get(f"/v1/events/{event_id}", headers=h)
    assert got.status_code == 200, got.text
    detail = got.json()
    assert detail["id"] == event_id and detail["idempotencyKey"] == "order-42"
    assert [r["id"] for r in detail["runs"]] == sent["runIds"]
    assert all(r["eventId"] == event_id for r in detail["runs"])
    replayed = api.post(f"/v1/events/{event_id}/replay", headers=h)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["id"] == event_id and len(replayed.json()["startedRunIds"]) == 1
    # The idempotency key is not an id: it is a filter of the list.
    assert api.get("/v1/events/order-42", headers=h).status_code == 404
    found = api.get("/v1/events", headers=h, params={"idempotencyKey": "order-42"}).json()
    assert [e["id"] for e in found["data"]] == [event_id]
    # A run's trigger names the event the same way.
    run = api.get(f"/v1/runs/{sent['runIds'][0]}", headers=h).json()
    assert run["triggerData"]["eventId"] == event_id
    assert run["triggerData"]["idempotencyKey"] == "order-42"


def test_one_event_vocabulary_in_every_answer(api, make_org) -> None:
    """An event goes in as {type, source, data} and comes out with the same names, in the
    list, the detail and replay answers: no eventType / payload."""
    org = make_org("vocab")
    active_workflow(org.id, "order.created")
    h = {"x-api-key": org.key}
    sent = api.post(
        "/v1/events", headers=h, json={"type": "order.created", "source": "shop", "data": {"a": 1}}
    ).json()
    fields = {
        "id", "type", "source", "data", "status", "receivedAt", "processedAt", "error",
        "runIds", "idempotencyKey",
    }  # fmt: skip
    listed = api.get("/v1/events", headers=h).json()["data"][0]
    detail = api.get(f"/v1/events/{sent['id']}", headers=h).json()
    replayed = api.post(f"/v1/events/{sent['id']}/replay", headers=h).json()
    many = api.post("/v1/events/replay", headers=h, json={"ids": [sent["id"]]}).json()["data"][0]
    assert set(listed) == fields
    assert set(detail) == fields | {"runs"}
    assert set(replayed) == set(many) == fields | {"startedRunIds"}
    for answer in (listed, detail, replayed, many):
        assert (answer["type"], answer["source"], answer["data"]) == (
            "order.created",
            "shop",
            {"a": 1},
        )
        assert answer["receivedAt"] == sent["receivedAt"]
    assert len(many["runIds"]) == 3 and many["startedRunIds"] == many["runIds"][2:]


def test_keys_publishable_ingests_only_and_bad_keys_are_401(api, make_org) -> None:
    org = make_org("keys", key_type="publishable")
    h = {"x-api-key": org.key}
    assert api.post("/v1/events", headers=h, json={"type": "a"}).status_code == 202
    batch = api.post("/v1/events/batch", headers=h, json={"events": [{"type": "a"}]})
    assert batch.status_code == 202
    denied = api.get("/v1/events", headers=h)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    assert "x-ratelimit-remaining" in denied.headers

    for headers in ({}, {"x-api-key": "sk_live_nope"}, {"authorization": "Bearer sk_live_no"}):
        for path in ("/v1/events", "/api/webhooks/ingest", "/v1/events/batch"):
            r = api.post(path, headers=headers, json={"type": "a"})
            assert r.status_code == 401, (path, headers, r.text)
            assert r.json()["error"]["code"] == "unauthenticated"
            assert "x-ratelimit-limit" not in r.headers

    reader = make_org("reader", key_type="restricted", permissions=["events:read"])
    r = api.post("/v1/events", headers={"x-api-key": reader.key}, json={"type": "a"})
    assert r.status_code == 403
    # A bearer token works like x-api-key.
    sk = make_org("bearer")
    r = api.post("/v1/events", headers={"authorization": f"Bearer {sk.key}"}, json={"type": "a"})
    assert r.status_code == 202


def test_batch_answers_each_event_on_its_own(api, make_org) -> None:
    org = make_org("batchy")
    wf = active_workflow(org.id, "user.*")
    h = {"x-api-key": org.key}
    api.post("/v1/events", headers={**h, "x-idempotency-key": "k-old"}, json={"type": "user.a"})

    events = [
        {"type": "user.signup", "data": {"i": 0}},  # 0 accepted, starts a run
        {"type": "other", "data": {"i": 1}, "idempotencyKey": "k1"},  # 1 accepted, no run
        {"type": "user.signup", "data": "not-an-object"},  # 2 invalid
        {"data": {}},  # 3 invalid: no type
        {"type": "other", "data": {"i": 1}, "idempotencyKey": "k1"},  # 4 repeat of 1
        {"type": "other", "data": {"i": 99}, "idempotencyKey": "k1"},  # 5 key reused
        {"type": "user.a", "idempotencyKey": "k-old"},  # 6 repeat of an earlier request
        {"type": "user.b", "idempotencyKey": "k-old"},  # 7 key reused (earlier request)
        {"type": "x", "unknown": 1},  # 8 unknown field
        {"type": "user.last", "source": "crm"},  # 9 accepted, starts a run
    ]
    r = api.post("/v1/events/batch", headers=h, json={"events": events})
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert [x["index"] for x in results] == list(range(10))
    assert [x["status"] for x in results] == [202, 202, 422, 422, 202, 409, 202, 409, 422, 202]
    assert "data" in results[2]["error"]["message"]
    assert results[3]["error"]["details"][0]["field"] == "type"
    assert results[8]["error"]["details"][0]["field"] == "unknown"
    k1 = results[1]["id"]
    assert results[4]["id"] == results[4]["eventId"] == k1 and results[1]["eventId"] == k1
    assert results[4]["idempotencyKey"] == results[1]["idempotencyKey"] == "k1"
    assert results[4]["runIds"] == results[1]["runIds"] == []
    assert results[5]["id"] == k1 and results[5]["error"]["code"] == "conflict"
    old = api.get("/v1/events", headers=h, params={"idempotencyKey": "k-old"}).json()["data"]
    assert results[6]["id"] == old[0]["id"] and len(results[6]["runIds"]) == 1
    assert results[7]["id"] == old[0]["id"]
    assert len(results[0]["runIds"]) == len(results[9]["runIds"]) == 1

    stored = {e.id: e for e in stored_events(org.id)}
    assert len(stored) == 4  # k-old + three new ones
    assert stored[k1].payload == {"i": 1} and stored[k1].event_id == "k1"
    assert stored[results[9]["id"]].source == "crm"
    runs = {r.id: r for r in stored_runs(org.id)}
    assert len(runs) == 3
    run = runs[results[0]["runIds"][0]]
    assert run.workflow_id == wf and run.status == "pending"
    assert run.trigger_data["data"] == {"i": 0}

    ok = api.post("/v1/events/batch", headers=h, json={"events": [{"type": "a"}, {"type": "b"}]})
    assert ok.status_code == 202
    assert [x["status"] for x in ok.json()["results"]] == [202, 202]


def test_batch_limits_and_shape(api, make_org, monkeypatch) -> None:
    from tenancy.config import reset_settings

    monkeypatch.setenv("ORBIN_MAX_BATCH_EVENTS", "5")
    reset_settings()
    org = make_org("limits")
    h = {"x-api-key": org.key}
    r = api.post("/v1/events/batch", headers=h, json={"events": [{"type": "a"}] * 6})
    assert r.status_code == 413, r.text
    assert "at most 5 events (got 6)" in r.json()["error"]["message"]
    assert api.post("/v1/events/batch", headers=h, json={"events": []}).status_code == 422
    r = api.post("/v1/events/batch", headers=h, json={"events": [], "x": 1})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "x"
    r = api.post("/v1/events/batch", headers=h, json=[{"type": "a"}])
    assert r.status_code == 422
    r = api.post("/v1/events/batch", headers={**h, "x-idempotency-key": "k"}, json={"events": []})
    assert r.status_code == 422 and "idempotencyKey" in r.json()["error"]["message"]
    assert stored_events(org.id) == []
    doc = api.get("/openapi.json").json()["paths"]["/v1/events/batch"]["post"]
    assert "ORBIN_MAX_BATCH_EVENTS" in doc["description"] and "207" in doc["description"]


def test_monthly_limit_refuses_only_the_events_that_do_not_fit(api, make_org) -> None:
    org = make_org("quota")
    active_workflow(org.id, "job.run")
    set_usage_limit(org.id, 2)
    h = {"x-api-key": org.key}
    batch = [{"type": "job.run", "data": {"i": i}} for i in range(3)] + [{"type": "free"}]
    r = api.post("/v1/events/batch", headers=h, json={"events": batch})
    assert r.status_code == 207
    statuses = [x["status"] for x in r.json()["results"]]
    assert statuses == [202, 202, 429, 202]
    assert "monthly execution limit" in r.json()["results"][2]["error"]["message"]
    assert r.json()["results"][2]["error"]["code"] == "execution_limit_reached"
    # The refused event is not lost: it is kept as a dead letter, with the reason.
    events = stored_events(org.id)
    assert len(events) == 4 and len(stored_runs(org.id)) == 2
    dead = [e for e in events if e.status == "failed"]
    assert len(dead) == 1 and dead[0].payload == {"i": 2} and dead[0].run_ids == []
    assert "monthly execution limit" in dead[0].error
    single = api.post("/v1/events", headers=h, json={"type": "job.run"})
    assert single.status_code == 429 and single.json()["error"]["code"] == "execution_limit_reached"
    events = stored_events(org.id)
    assert len(events) == 5 and sum(e.status == "failed" for e in events) == 2
    assert len(stored_runs(org.id)) == 2


BODY_LEVEL = [
    # (content type, body, status, a word the error must contain): the same on every path
    ("application/json", b'{"type":', 400, "JSON"),
    ("application/json", b"", 400, "empty"),
    ("application/json", b'{"type":"a","data":{"x":NaN}}', 400, "JSON"),
    ("application/json", b'{"type":"a","data":{"x":"\\ud800"}}', 400, "JSON"),
    ("application/json", b'{"type":"a","data":{"x":1e999}}', 400, "JSON"),
    ("application/json", b'{"type":"a\xff"}', 400, "JSON"),
    ("application/json", b"[" * 5000 + b"]" * 5000, 422, "deeper"),
    ("application/json", b'{"type":"a","data":' + b'{"a":' * 40 + b"1" + b"}" * 41, 422, "deeper"),
    ("application/json", b'{"type":"a","data":{"k":"x\\u0000y"}}', 422, "data.k"),
    ("application/json", b'{"type":"a","source":"s\\u0000"}', 422, "source"),
    ("application/json", b'{"type":"a","data":{"\\u0000":1}}', 422, "NUL"),
    ("application/json", b'"just a string"', 422, "object"),
    ("text/plain", b'{"type":"a"}', 415, "application/json"),
    ("", b'{"type":"a"}', 415, "application/json"),
    ("application/x-www-form-urlencoded", b"type=a", 415, "application/json"),
]
EVENT_LEVEL = [
    # (event, a word the error must contain): the whole answer for one event, an item in a batch
    (b'{"data":{}}', "type"),
    (b'{"type":"a","data":"str"}', "data"),
    (b'{"type":"a","data":[1]}', "data"),
    (b'{"type":"a b"}', "type"),
    (b'{"type":"a","extra":1}', "extra"),
    (b'{"type":""}', "type"),
    (b'{"type":"a","source":""}', "source"),
    (b'{"type":"' + b"a" * 201 + b'"}', "type"),
    (b'{"type":7}', "type"),
]


@pytest.mark.parametrize("path", ["/v1/events", "/api/webhooks/ingest", "/v1/events/batch"])
def test_bad_input_is_a_clear_4xx(api, make_org, path: str) -> None:
    org = make_org("hard", plan="enterprise")
    batch = path.endswith("batch")
    for ctype, body, status, word in BODY_LEVEL:
        headers = {"x-api-key": org.key}
        if ctype:
            headers["content-type"] = ctype
        r = api.post(path, headers=headers, content=body)
        assert r.status_code == status, (ctype, body[:80], r.status_code, r.text[:300])
        err = r.json()["error"]
        assert err["code"] and word in err["message"] + json.dumps(err["details"]), err
    for event, word in EVENT_LEVEL:
        body = b'{"events":[' + event + b"]}" if batch else event
        headers = {"x-api-key": org.key, "content-type": "application/json"}
        r = api.post(path, headers=headers, content=body)
        if batch:
            assert r.status_code == 207, (event, r.text)
            (item,) = r.json()["results"]
            assert item["status"] == 422 and word in json.dumps(item["error"]), item
        else:
            assert r.status_code == 422, (event, r.text)
            err = r.json()["error"]
            assert word in err["message"] and err["details"][0]["field"] == word, err
    assert stored_events(org.id) == []

    r = api.post(path, headers={"x-api-key": org.key, "content-encoding": "gzip"}, json={})
    assert r.status_code == 415
    if not batch:
        key = {"x-api-key": org.key, "x-idempotency-key": "k" * 201}
        r = api.post(path, headers=key, json={"type": "a"})
        assert r.status_code == 422 and "x-idempotency-key" in r.json()["error"]["message"]


def test_body_size_limit_with_and_without_content_length(api, make_org, monkeypatch) -> None:
    from tenancy.config import reset_settings

    monkeypatch.setenv("ORBIN_MAX_BODY_BYTES", "2048")
    reset_settings()
    org = make_org("big")
    h = {"x-api-key": org.key, "content-type": "application/json"}
    big = json.dumps({"type": "a", "data": {"x": "y" * 3000}}).encode()
    r = api.post("/v1/events", headers=h, content=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: sent chunked
        for i in range(0, len(big), 500):
            yield big[i : i + 500]

    r = api.post("/v1/events", headers=h, content=chunks())
    assert r.status_code == 413, r.text
    small = json.dumps({"type": "a", "data": {"x": "y" * 100}}).encode()
    r = api.post("/v1/events", headers=h, content=iter([small[:10], small[10:]]))
    assert r.status_code == 202, r.text
    assert len(stored_events(org.id)) == 1


def test_changes_are_announced_once_committed(api, make_org, database) -> None:
    """Live views and the worker hear of new events and runs (NOTIFY on PostgreSQL, sent
    after the commit; the in-process bus on SQLite); a refused event is announced as the dead
    letter it became, with no run."""
    import time

    from tenancy.changes import CHANGES_CHANNEL, OUTBOX_CHANNEL, local_bus, read_notification

    org = make_org("heard")
    active_workflow(org.id, "job.run")
    heard: list[tuple[str, dict]] = []
    listener = None
    if database.startswith("postgresql"):
        import psycopg

        listener = psycopg.connect(database.replace("+psycopg", ""), autocommit=True)
        listener.execute(f"LISTEN {CHANGES_CHANNEL}")
        listener.execute(f"LISTEN {OUTBOX_CHANNEL}")
    else:
        unsubscribe = local_bus.subscribe(lambda c, p: heard.append((c, p)))
    try:
        h = {"x-api-key": org.key}
        ok = api.post("/v1/events", headers=h, json={"type": "job.run", "data": {"a": 1}}).json()
        set_usage_limit(org.id, 1)
        refused = api.post("/v1/events", headers=h, json={"type": "job.run"})
        assert refused.status_code == 429
        if listener is not None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(heard) < 4:
                for n in listener.notifies(timeout=0.5, stop_after=1):
                    if n.channel == CHANGES_CHANNEL:  # changes come packed in arrays
                        heard += [(n.channel, c) for c in read_notification(n.payload)]
                    else:
                        heard.append((n.channel, json.loads(n.payload)))
    finally:
        if listener is not None:
            listener.close()
        else:
            unsubscribe()
    changes = [p for c, p in heard if c == CHANGES_CHANNEL and p.get("org") == org.id]
    kinds = sorted((p["kind"], p["status"]) for p in changes)
    assert kinds == [("event", "failed"), ("event", "pending"), ("run", "pending")], heard
    assert next(p for p in changes if p["kind"] == "run")["id"] == ok["runIds"][0]
    assert any(c == OUTBOX_CHANNEL for c, _ in heard), "the worker is woken"


def test_a_workflow_activated_meanwhile_starts_with_the_next_event(api, make_org) -> None:
    """Ingestion remembers which workflows an event type starts, but forgets it the moment a
    workflow of the organization changes in this process."""
    from orbin_flows.workflows import set_status
    from tenancy.db import session_scope
    from tenancy.principal import system_principal

    org = make_org("fresh")
    h = {"x-api-key": org.key}
    assert api.post("/v1/events", headers=h, json={"type": "late.bloomer"}).json()["runIds"] == []
    wf = active_workflow(org.id, "late.bloomer")
    assert (
        len(api.post("/v1/events", headers=h, json={"type": "late.bloomer"}).json()["runIds"]) == 1
    )
    with session_scope() as session:
        set_status(session, system_principal(org.id, org.slug), wf, "paused")
    assert api.post("/v1/events", headers=h, json={"type": "late.bloomer"}).json()["runIds"] == []
