"""``GET /v1/stream``: live changes as Server-Sent Events, scoped to the organization, on both
backends: in the whole platform (the worker is another process) and against a live API."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import OrgWithKey
from tests.support.services import Platform, free_port
from tests.support.sse import SSEReader


def _post(url: str, key: str, path: str, json: Any) -> dict[str, Any]:
    resp = httpx.post(f"{url}{path}", headers={"x-api-key": key}, json=json, timeout=30)
    assert resp.status_code in (200, 201, 202), resp.text
    return resp.json()


async def test_platform_streams_each_org_only_its_own_changes(platform: Platform) -> None:
    url = platform.api_url
    a_key = platform.demo_key
    slug = f"sse{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(platform.orbin, "org", "create", "--slug", slug)
    b_key = await asyncio.to_thread(platform.new_key, slug)

    async with (
        SSEReader(f"{url}/v1/stream", {"x-api-key": a_key}) as a,
        SSEReader(f"{url}/v1/stream", {"x-api-key": b_key}) as b,
    ):
        sent = await asyncio.to_thread(
            _post, url, a_key, "/v1/events", {"type": "demo.hello", "data": {"name": "Live"}}
        )
        run_id = sent["runIds"][0]
        done = await a.wait_for(
            lambda m: (
                m["event"] == "run"
                and m["data"]["id"] == run_id
                and m["data"]["status"] == "completed"
            ),
            timeout=90,
        )
        statuses = [m["data"]["status"] for m in a.messages if m["data"].get("id") == run_id]
        assert statuses[:2] == ["pending", "running"] and statuses[-1] == "completed"
        steps = {
            (m["data"]["stepId"], m["data"]["status"])
            for m in a.messages
            if m["event"] == "step" and m["data"]["runId"] == run_id
        }
        assert {("greet", "completed"), ("summarize", "completed")} <= steps
        event_msgs = [m for m in a.messages if m["event"] == "event"]
        assert event_msgs and event_msgs[0]["data"]["type"] == "demo.hello"
        # The event vocabulary of every other answer: its id (the 202's), type, status.
        vocabulary = {"id", "type", "source", "status", "runIds", "receivedAt", "processedAt"}
        mine = [m["data"] for m in event_msgs if m["data"]["id"] == sent["id"]]
        assert mine and all(set(d) - {"kind", "seq"} <= vocabulary for d in mine), mine
        # Each object's changes arrive in the order they were made, each once; the messages'
        # ids (the stream's position in commit order) never go back.
        by_object: dict[str, list[int]] = {}
        for m in a.messages:
            by_object.setdefault(m["data"]["id"], []).append(m["data"]["seq"])
        assert all(seqs == sorted(seqs) for seqs in by_object.values()), "per object in order"
        assert len({m["data"]["seq"] for m in a.messages}) == len(a.messages)
        positions = [int(m["id"]) for m in a.messages]
        assert positions == sorted(positions)

        await asyncio.to_thread(_post, url, b_key, "/v1/events", {"type": "b.only", "data": {}})
        await b.wait_for(lambda m: m["event"] == "event" and m["data"]["type"] == "b.only")
        await asyncio.sleep(0.5)  # anything of A's would have arrived by now
        assert all(m["data"].get("type") == "b.only" for m in b.messages), b.messages
        assert all(run_id not in str(m["data"]) for m in b.messages)

    # Reconnecting with Last-Event-ID: everything after that position, from the change log.
    first = a.messages[0]
    last = done["data"]["seq"]
    async with SSEReader(
        f"{url}/v1/stream", {"x-api-key": a_key, "Last-Event-ID": first["id"]}
    ) as again:
        await again.wait_for(lambda m: m["data"]["seq"] == last, timeout=10)
        resumed = {m["data"]["seq"] for m in again.messages}
        missed = {
            m["data"]["seq"] for m in a.messages if int(first["id"]) < m["data"]["seq"] <= last
        }
        assert missed <= resumed


# --- against a live API in this process (fast mechanics, both backends) -----------------------


@pytest.fixture
def live_api(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import uvicorn

    from ingest_api import create_app
    from tenancy.config import reset_settings

    monkeypatch.setenv("ORBIN_STREAM_HEARTBEAT_SECONDS", "0.3")
    reset_settings()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        reset_settings()


def _new_run(org: OrgWithKey) -> str:
    """A workflow and a pending run written by this process (as the worker would)."""
    from orbin_flows.workflows import create_workflow
    from tenancy import runs as runs_repo
    from tenancy.db import session_scope
    from tenancy.principal import system_principal

    with session_scope() as session:
        wf = create_workflow(
            session,
            system_principal(org.id, org.slug),
            {
                "name": "W",
                "slug": f"w{uuid.uuid4().hex[:8]}",
                "status": "active",
                "trigger": {"type": "manual"},
                "steps": [],
            },
        )
        run = runs_repo.create_run(
            session, organization_id=org.id, workflow=wf, trigger_type="manual", trigger_data={}
        )
        return run.id


def _finish(run_id: str) -> None:
    from tenancy import runs as runs_repo
    from tenancy.db import session_scope
    from tenancy.models import WorkflowRun

    with session_scope() as session:
        run = session.get(WorkflowRun, run_id)
        assert run is not None
        runs_repo.finish_run(session, run=run, status="completed")


def _revoke(org: OrgWithKey, plaintext: str) -> None:
    from tenancy.db import session_scope
    from tenancy.keys import hash_key, read_api_keys, revoke_api_key

    with session_scope() as session:
        [key] = [
            k
            for k in read_api_keys(session, organization_id=org.id)
            if k.key_hash == hash_key(plaintext)
        ]
        revoke_api_key(session, organization_id=org.id, key_id=key.id)


def test_change_log_is_read_per_org_and_pruned(make_org) -> None:
    from tenancy.changes import latest_change_seq, prune_changes, read_changes
    from tenancy.clock import now_ms
    from tenancy.db import session_scope

    a, b = make_org("acme"), make_org("other")
    run_a, run_b = _new_run(a), _new_run(b)
    with session_scope() as session:
        mine = read_changes(session, after=0, organization_id=a.id)
        assert [c["id"] for c in mine if c["kind"] == "run"] == [run_a]
        assert all(c["org"] == a.id for c in mine)
        everyone = read_changes(session, after=0)
        assert {run_a, run_b} <= {c["id"] for c in everyone}
        seqs = [c["seq"] for c in everyone]
        assert seqs == sorted(seqs) and latest_change_seq(session) == seqs[-1]
        assert read_changes(session, after=seqs[-1]) == []
        assert prune_changes(session, older_than_ms=now_ms() - 60_000) == 0
        assert prune_changes(session, older_than_ms=now_ms() + 1) == len(everyone)


async def test_stream_scoping_filters_and_heartbeats(live_api: str, make_org) -> None:
    from tests.integration.test_events_api import add_key

    a, b = make_org("acme"), make_org("other")
    runs_only = add_key(a, "restricted", ["runs:read"])
    url = f"{live_api}/v1/stream"
    async with (
        SSEReader(url, {"x-api-key": a.key}) as sa,
        SSEReader(url, {"x-api-key": b.key}) as sb,
        SSEReader(url, {"x-api-key": runs_only.key}) as sr,
    ):
        run_a = await asyncio.to_thread(_new_run, a)
        await sa.wait_for(lambda m: m["data"].get("id") == run_a, timeout=10)
        async with SSEReader(f"{url}?runId={run_a}&kinds=run", {"x-api-key": a.key}) as one:
            await asyncio.to_thread(_new_run, a)  # another run: not this stream's business
            await asyncio.to_thread(_finish, run_a)
            done = await one.wait_for(lambda m: m["data"]["status"] == "completed", timeout=10)
            assert done["data"]["id"] == run_a
            assert all(m["data"]["id"] == run_a for m in one.messages)
        await sr.wait_for(lambda m: m["data"].get("id") == run_a, timeout=10)
        assert all(m["event"] in ("run", "step") for m in sr.messages), "no events: no events:read"

        run_b = await asyncio.to_thread(_new_run, b)
        await sb.wait_for(lambda m: m["data"].get("id") == run_b, timeout=10)
        await asyncio.sleep(0.3)
        assert all(run_a not in str(m) for m in sb.messages), "org B never sees org A's changes"
        assert all(run_b not in str(m) for m in sa.messages)
        assert "keep-alive" in sa.comments, "an idle stream gets heartbeat comments"

    doomed = add_key(a, "restricted", ["runs:read"])
    async with SSEReader(url, {"x-api-key": doomed.key}) as revoked:
        await asyncio.to_thread(_revoke, a, doomed.key)
        ended = await revoked.wait_for(lambda m: m["event"] == "error", timeout=10)
        assert "no longer valid" in ended["data"]["message"]

    async def status_of(headers: dict[str, str], query: str = "") -> tuple[int, bytes]:
        reader = SSEReader(f"{url}{query}", headers)
        async with reader:
            pass
        return reader.status or 0, reader.body

    assert (await status_of({}))[0] == 401
    assert (await status_of({"x-api-key": add_key(a, "publishable").key}))[0] == 403
    assert (await status_of({"x-api-key": a.key}, "?kinds=logs"))[0] == 422
    status, body = await status_of({"x-api-key": a.key, "Last-Event-ID": "nope"})
    assert status == 422 and b"Last-Event-ID" in body


async def test_a_slow_subscriber_is_told_and_dropped(database: str) -> None:
    from tenancy.change_feed import OVERFLOW, ChangeFeed

    feed = ChangeFeed(queue_size=2)
    slow = await feed.subscribe("org-1")
    other = await feed.subscribe("org-2")
    for i in range(3):
        feed.dispatch({"org": "org-1", "kind": "run", "id": str(i), "seq": 10**9 + i})
    got = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert [g["id"] for g in got[:-1]] == ["0", "1"] and got[-1] is OVERFLOW
    assert other.queue.empty(), "another organization's subscriber hears nothing"
    assert feed.subscriber_count == 1
    other.close()
    assert feed.subscriber_count == 0 and feed._task is None, "the source stops with the last"


async def test_a_change_committed_out_of_order_is_neither_missed_live_nor_on_resume(
    live_api: str, make_org, database: str
) -> None:
    """Transaction 1 draws a change number and stays open; transaction 2 draws a higher one and
    commits first. The stream sends 2 at once but its position stays below 1; once 1 commits
    (here without any notification, as after a crash between commit and NOTIFY), it comes from
    the change log, live and to a client resuming from the position it had."""
    if not database.startswith("postgresql"):
        pytest.skip("on SQLite one writer at a time: numbers are drawn in commit order")
    from sqlalchemy import text

    from tenancy.changes import publish_change
    from tenancy.db import get_engine, session_scope

    org = make_org("acme")
    url = f"{live_api}/v1/stream"
    async with SSEReader(url, {"x-api-key": org.key}) as live:
        with get_engine().connect() as held:
            early = held.execute(
                text(
                    "INSERT INTO change_log (organization_id, kind, payload, created_at)"
                    " VALUES (:o, 'run', CAST(:p AS jsonb), 0) RETURNING id"
                ),
                {"o": org.id, "p": f'{{"org": "{org.id}", "kind": "run", "id": "early"}}'},
            ).scalar_one()
            async with SSEReader(url, {"x-api-key": org.key}) as first:
                with session_scope() as session:
                    publish_change(
                        session, organization_id=org.id, kind="run", obj_id="late", status="x"
                    )
                late = await first.wait_for(lambda m: m["data"]["id"] == "late", timeout=10)
                assert late["data"]["seq"] > early
                assert int(late["id"]) < early, "the position stays below the open transaction"
            held.commit()
        got = await live.wait_for(lambda m: m["data"]["id"] == "early", timeout=10)
        assert got["data"]["seq"] == early and int(got["id"]) >= late["data"]["seq"]
    async with SSEReader(url, {"x-api-key": org.key, "Last-Event-ID": late["id"]}) as again:
        await again.wait_for(lambda m: m["data"]["id"] == "early", timeout=10)
