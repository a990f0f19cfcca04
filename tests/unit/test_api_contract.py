"""The API's contract, walked from its OpenAPI document on an organization with some of
everything: every GET answers; every list is ``{data, nextCursor, hasMore}``; every id an
answer gives is one the matching route accepts; every time is integer milliseconds.

A route added later is walked too: a new id field, a new list or a new time field must fit
(an id field this test cannot place fails it, until it is classified below). SQLite and
PostgreSQL, in-process.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

PW = "correct horse battery staple 42"

# Routes not walked, and why.
SKIPPED = {
    "/healthz": "names the Prefect server, not running here",
    "/readyz": "names the Prefect server, not running here",
    "/v1/stream": "Server-Sent Events (tests/integration/test_stream.py)",
    "/v1/audit-logs/export": "CSV",
    "/v1/integrations/oauth/{provider}/start": "needs an OAuth app (test_integrations_oauth)",
    "/v1/integrations/oauth/{provider}/callback": "the provider's redirect",
    "/v1/billing/invoices": "needs Stripe (test_billing_api)",
    "/v1/orgs/current/sso": "exists once set up against an OIDC provider (test_sso)",
    "/v1/auth/sso/{slug}/login": "a redirect to the organization's OIDC provider (test_sso)",
    "/v1/auth/sso/{slug}/callback": "the OIDC provider's redirect (test_sso)",
    "/v1/runs/{run_id}/steps/{step_id}/output": "a step's own JSON (test_runs_outputs)",
}
# Collection routes that answer one report, not a list of resources.
REPORTS = {
    "/v1/me": "the signed-in user, with their memberships",
    "/v1/usage": "executions per day or workflow over a range",
    "/v1/ai/usage": "AI calls per feature over a range",
    "/v1/billing": "the plan and the period's usage",
}
# Tenant data and specs: their keys are the tenant's, not the API's.
OPAQUE = {
    "data",
    "triggerData",
    "input",
    "output",
    "result",
    "spec",
    "trigger",
    "metadata",
    "config",
    "settings",
    "limits",
    "$defs",
    "properties",
    "error",
}
# *Id fields that name something outside Orbin's API (Prefect, Stripe, the spec, a trace).
FOREIGN_IDS = {
    "stepId",
    "traceId",
    "prefectFlowRunId",
    "prefectDeploymentId",
    "customerId",
    "subscriptionId",
}
# What an id field names.
ID_FIELDS = {
    "workflowId": "workflow",
    "runId": "run",
    "parentRunId": "run",
    "eventId": "event",
    "integrationId": "integration",
    "userId": "user",
    "invitedBy": "user",
    "actorId": "user",
    "organizationId": "org",
    "resourceId": None,  # an audit entry's: its kind is resourceType
}
# The kind of the objects a route (by its longest matching prefix) or a nested list holds.
ROUTE_KINDS = {
    "/v1/events": "event",
    "/v1/dead-letters": "event",
    "/v1/runs": "run",
    "/v1/runs/{run_id}/artifacts": "artifact",
    "/v1/workflows": "workflow",
    "/v1/workflows/{workflow_id}/versions": "version",
    "/v1/integrations": "integration",
    "/v1/api-keys": "key",
    "/v1/invitations": "invitation",
    "/v1/notifications": "notification",
    "/v1/audit-logs": "audit",
    "/v1/orgs": "org",
    "/v1/members": "member",
    "/v1/me": "user",
}
NESTED_KINDS = {"runs": "run", "steps": "step", "organizations": "org", "user": "user"}
TIME_SUFFIXES = ("At", "Until")
TIME_FIELDS = {
    ("/v1/billing", "start"),
    ("/v1/billing", "end"),
    ("/v1/usage", "from"),
    ("/v1/usage", "to"),
    ("/v1/ai/usage", "start"),
    ("/v1/ai/usage", "end"),
    ("/v1/workflows/{workflow_id}/schedule", "nextRuns"),
}
MS_FLOOR = 10**11  # 1973 in ms; seconds since the epoch stay below it until the year 5138


def _step(step_id: str, output: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "name": step_id,
        "type": "action",
        "config": {"action": "transform", "output": output},
    }


def _workflow(slug: str, trigger: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": slug.title(),
        "slug": slug,
        "status": "active",
        "trigger": trigger,
        "steps": [_step("a", {"n": 1}), _step("b", "{{ steps.a.output.n }}")],
    }


@pytest.fixture
def seeded(api, monkeypatch) -> dict[str, Any]:
    """One organization with a user, a key, workflows of each trigger, events, runs with
    steps, a dead letter, an integration and an invitation; the answers that made them."""

    async def ensure_pool(slug: str, concurrency: int) -> bool:
        return True

    monkeypatch.setattr("orbin_flows.organizations.ensure_pool", ensure_pool)
    answers: list[tuple[str, Any]] = []

    def post(path: str, body: Any, headers: dict[str, str]) -> Any:
        r = api.post(path, json=body, headers=headers)
        assert r.status_code < 300, (path, r.text)
        answers.append((path, r.json()))
        return r.json()

    token = post(
        "/v1/auth/signup", {"email": "ada@example.com", "password": PW, "name": "Ada"}, {}
    )["token"]
    user = {"authorization": f"Bearer {token}", "x-orbin-org": "acme"}
    post("/v1/orgs", {"name": "Acme", "slug": "acme", "plan": "pro"}, user)
    key = {"x-api-key": post("/v1/api-keys", {"name": "ci", "type": "secret"}, user)["key"]}
    orders = _workflow("orders", {"type": "event", "config": {"eventType": "order.*"}})
    on_event = post("/v1/workflows", orders, key)
    post("/v1/workflows", _workflow("hook", {"type": "webhook", "config": {}}), user)
    post("/v1/workflows", _workflow("tick", {"type": "schedule", "config": {"interval": 60}}), key)
    v2 = api.put(
        f"/v1/workflows/{on_event['id']}", json={**orders, "description": "2"}, headers=user
    )
    answers.append(("/v1/workflows/{workflow_id}", v2.json()))
    keyed = {**key, "x-idempotency-key": "o-1"}
    sent = post("/v1/events", {"type": "order.paid", "data": {"n": 1}}, keyed)
    post("/v1/events", {"type": "note", "data": {}}, key)
    post("/v1/events/batch", {"events": [{"type": "order.new"}, {"type": "x"}]}, key)
    post(f"/v1/events/{sent['id']}/replay", None, user)
    post(f"/v1/workflows/{on_event['id']}/runs", {"data": {"k": 1}}, key)
    post(f"/v1/runs/{sent['runIds'][0]}/replay", None, key)
    hook = {"provider": "webhook", "name": "out", "config": {"url": "https://hooks.example.com/in"}}
    post("/v1/integrations", {**hook, "credentials": {"signingSecret": "s3cret-s3cret"}}, key)
    post("/v1/invitations", {"email": "bob@example.com", "role": "member"}, user)
    _seed_steps_and_a_dead_letter(sent["runIds"][0], on_event["trigger"])
    return {"user": user, "key": key, "answers": answers}


def _seed_steps_and_a_dead_letter(run_id: str, trigger: dict[str, Any]) -> None:
    """What a worker would write: steps of a run (one retrying), a finished run; and an
    event the monthly limit refused."""
    from tenancy import runs as runs_repo
    from tenancy import steps as steps_repo
    from tenancy.clock import now_ms
    from tenancy.db import session_scope
    from tenancy.models import WorkflowRun

    with session_scope() as session:
        run = session.get(WorkflowRun, run_id)
        assert run is not None
        runs_repo.mark_run_running(session, run=run, worker_id="w", lease_ms=60_000)
        for step_id, status in (("a", "completed"), ("b", "retrying")):
            rec = steps_repo.start_step(
                session,
                run=run,
                step_id=step_id,
                step_name=step_id,
                step_type="action",
                attempt=1,
                max_attempts=3,
                input={},
            )
            steps_repo.finish_step(
                session,
                step=rec,
                status=status,
                output={"n": 1},
                next_retry_at=now_ms() + 60_000 if status == "retrying" else None,
            )
        runs_repo.finish_run(session, run=run, status="completed", result={"n": 1})
        from tenancy import events as events_repo

        events = events_repo.read_events(session, organization_id=run.organization_id, limit=1)
        events_repo.fail_event(session, event=events[0], reason="could not start: test")


def _fill(path: str, ids: dict[str, list[str]]) -> Iterator[str]:
    """The path with each parameter replaced by ids of its kind (every one known)."""
    params = re.findall(r"\{(\w+)\}", path)
    if not params:
        yield path
        return
    name = params[0]
    if name == "version":
        values = ["1"]
    else:
        values = ids.get(name.removesuffix("_id"), [])
    assert values, f"no {name} known to walk {path}"
    for value in values:
        yield from _fill(path.replace("{" + name + "}", value, 1), ids)


def _route_kind(template: str) -> str | None:
    best = max((p for p in ROUTE_KINDS if template.startswith(p)), key=len, default=None)
    return ROUTE_KINDS[best] if best else None


def _walk(value: Any, kind: str | None, path: str) -> Iterator[tuple[str, str, Any, str | None]]:
    """(where, field, value, kind of the object holding it) for every field, tenant data
    left out."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, kind, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}", k, v, kind
            if k in OPAQUE:
                continue
            inner = NESTED_KINDS.get(k, kind if k == "data" else None)
            yield from _walk(v, inner, f"{path}.{k}")


def _is_page(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("data"), list)
        and isinstance(body.get("hasMore"), bool)
        and "nextCursor" in body
        and (body["nextCursor"] is None or isinstance(body["nextCursor"], str))
        and (body["hasMore"] or body["nextCursor"] is None)
    )


def _answers(api, seeded) -> list[tuple[str, str, Any]]:
    """(route template, path, answer) of every GET the document lists, ids discovered from
    the lists first."""
    doc = api.app.openapi()
    h = seeded["user"]
    gets = [p for p, ops in doc["paths"].items() if "get" in ops and p not in SKIPPED]
    ids: dict[str, list[str]] = {}
    out: list[tuple[str, str, Any]] = []
    for template in sorted(gets, key=lambda p: p.count("{")):  # lists before items
        answered = []
        for path in _fill(template, ids):
            r = api.get(path, headers=h, params={"from": 1, "to": 1} if "diff" in path else None)
            # A workflow's webhook or schedule exists only for that trigger: 404 for others.
            assert r.status_code in (200, 404), (path, r.status_code, r.text[:300])
            answered.append(r.status_code)
            if r.status_code != 200:
                continue
            body = r.json()
            out.append((template, path, body))
            kind = _route_kind(template)
            if _is_page(body) and kind:
                found = [d["id"] for d in body["data"] if isinstance(d, dict) and "id" in d]
                ids.setdefault(kind, []).extend(found)
        assert 200 in answered, f"{template} answered {answered}, never 200"
    return out


def test_every_list_answers_the_one_list_shape(api, seeded) -> None:
    doc = api.app.openapi()
    pages = 0
    for template, path, body in _answers(api, seeded):
        assert not isinstance(body, list), f"{path} answers a bare list"
        schema = doc["paths"][template]["get"]["responses"]["200"]["content"]
        schema = schema.get("application/json", {}).get("schema", {})
        name = schema.get("$ref", "").rsplit("/", 1)[-1]
        documented = set(doc["components"]["schemas"].get(name, {}).get("properties", {}))
        if {"data", "nextCursor", "hasMore"} <= documented or _is_page(body):
            assert _is_page(body), f"{path} is documented as a page but answers {body!r:.200}"
            pages += 1
            continue
        if template.endswith("}") or template in REPORTS:
            continue  # one resource (which may hold lists of its own), or a report
        lists = [k for k, v in body.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
        assert not lists, f"{path} holds a list ({lists}) outside {{data, nextCursor, hasMore}}"
    assert pages >= 12, "the lists were walked"


def test_every_id_answered_is_accepted_by_its_route(api, seeded) -> None:
    answered = _answers(api, seeded)
    h = seeded["user"]

    def ids_of(path: str, field: str = "id") -> set[str]:
        return {d[field] for d in api.get(path, headers=h).json()["data"]}

    listed = {
        "key": ids_of("/v1/api-keys"),
        "invitation": ids_of("/v1/invitations"),
        "notification": ids_of("/v1/notifications"),
        "audit": ids_of("/v1/audit-logs?limit=500"),
        "org": ids_of("/v1/orgs"),
        "user": ids_of("/v1/members", "userId"),
        "member": set(),
    }
    by_route = {"workflow": "/v1/workflows/{}", "run": "/v1/runs/{}", "event": "/v1/events/{}"}
    by_route["integration"] = "/v1/integrations/{}"
    checked: dict[tuple[str, str], str] = {}

    def check(kind: str, value: str, where: str) -> None:
        if (kind, value) in checked:
            return
        checked[(kind, value)] = where
        if kind in by_route:
            r = api.get(by_route[kind].format(value), headers=h)
            assert r.status_code == 200, f"{where} = {value!r}: GET {kind} -> {r.status_code}"
        else:
            assert value in listed[kind], f"{where} = {value!r} is no {kind} of this organization"

    sources = [(t, p, b) for t, p, b in answered] + [
        (p, p, b) for p, b in seeded["answers"] if not p.startswith("/v1/auth")
    ]
    for template, path, body in sources:
        for where, field, value, kind in _walk(body, _route_kind(template), path):
            if field in ("createdBy", "updatedBy") and value is not None:
                assert set(value) == {"type", "id"}, f"{where}: an actor is {{type, id}}"
                check({"user": "user", "key": "key"}[value["type"]], value["id"], where)
            elif field == "id" and isinstance(value, str) and kind in (*by_route, *listed):
                check(kind, value, where)
            elif field.endswith("Id") or field in ID_FIELDS:
                if field in FOREIGN_IDS or value is None:
                    continue
                assert field in ID_FIELDS, f"{where}: what does {field} name? classify it here"
                target = ID_FIELDS[field]
                if target is not None:
                    check(target, value, where)
    kinds = {kind for kind, _ in checked}
    assert {"workflow", "run", "event", "integration", "key", "user", "org"} <= kinds


def test_every_time_is_integer_milliseconds(api, seeded) -> None:
    seen = 0
    answers = _answers(api, seeded) + [(p, p, b) for p, b in seeded["answers"]]
    for template, path, body in answers:
        for where, field, value, _ in _walk(body, None, path):
            is_time = field.endswith(TIME_SUFFIXES) or (template, field) in TIME_FIELDS
            if not is_time or value is None:
                continue
            values = value if isinstance(value, list) else [value]
            for v in values:
                assert isinstance(v, int) and not isinstance(v, bool), f"{where} = {v!r}"
                assert v >= MS_FLOOR, f"{where} = {v}: seconds, not milliseconds?"
                seen += 1
    assert seen > 50, "times were found"
