"""Event ingestion: ``POST /v1/events``, ``POST /v1/events/batch`` and the PRD's
``POST /api/webhooks/ingest``.

Ingestion answers once the event, its runs and their outbox items are committed; it never
waits on Prefect. The caller was authenticated and rate-limited by the middleware.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter, ValidationError

from ingest_api.auth import authenticate
from ingest_api.body import read_json
from ingest_api.deps import Allowed, SessionDep
from ingest_api.errors import ApiError, error_body, validation_details
from ingest_api.ingest_answers import ingest_events
from ingest_api.ratelimit import request_principal
from ingest_api.schemas.events import (
    BatchAccepted,
    BatchEventIn,
    BatchIn,
    EventAccepted,
    EventDetail,
    EventIn,
    EventPublic,
    EventsPage,
)
from ingest_api.schemas.runs import RunPublic
from orbin_flows.ingest import IngestResult, NewEvent
from tenancy import events as events_repo
from tenancy import runs as runs_repo
from tenancy.clock import parse_instant
from tenancy.config import get_settings
from tenancy.errors import Conflict, InvalidInput, LimitExceeded, OrbinError
from tenancy.pagination import page
from tenancy.principal import Principal

router = APIRouter(tags=["events"])
_BATCH_EVENTS = TypeAdapter(list[BatchEventIn])

# Headers are read from the request, not declared as parameters (FastAPI's parameter
# machinery costs more than the rest of the route); they are documented here instead.
_KEY_HEADER = {
    "name": "x-api-key",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Your API key (or send it as Authorization: Bearer ...)",
}
_IDEMPOTENCY_HEADER = {
    "name": "x-idempotency-key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "The same key with the same event is answered once (the answer's "
    "idempotencyKey); the event's own id is id",
}


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema with its ``#/$defs/...`` references replaced by what they name: inside
    the OpenAPI document, a ``$defs`` reference would not resolve."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
                return resolve(dict(defs[ref[8:]]))
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


_BODY_DOC = {
    "parameters": [_KEY_HEADER, _IDEMPOTENCY_HEADER],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": EventIn.model_json_schema()}},
    },
}
_BATCH_DOC = {
    "parameters": [_KEY_HEADER],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": inline_defs(BatchIn.model_json_schema())}},
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not valid JSON"},
    401: {"description": "Missing or wrong API key"},
    403: {"description": "The key may not ingest events"},
    413: {"description": "The body is larger than ORBIN_MAX_BODY_BYTES (1 MiB by default)"},
    415: {"description": "The body is not application/json"},
    422: {"description": "The event is invalid; the error names the field"},
    429: {"description": "Rate limit (Retry-After) or monthly execution limit"},
}


def _json(content: Any, status: int) -> Response:
    return Response(orjson.dumps(content), status, media_type="application/json")


def _invalid(exc: ValidationError, prefix: str = "invalid event") -> InvalidInput:
    details = validation_details(list(exc.errors()))
    return InvalidInput(
        prefix + ": " + "; ".join(f"{d['field']}: {d['message']}" for d in details[:5]),
        details=details,
    )


def parse_event(value: Any) -> EventIn:
    if not isinstance(value, dict):
        raise InvalidInput(
            "the body must be a JSON object with type, source and data",
            details=[{"field": "body", "message": "expected an object"}],
        )
    try:
        return EventIn.model_validate(value)
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _check_idempotency_key(key: str | None) -> None:
    if key is not None and not (1 <= len(key) <= 200):
        raise InvalidInput(
            "x-idempotency-key must be 1 to 200 characters",
            details=[{"field": "x-idempotency-key"}],
        )


async def ingesting_principal(request: Request) -> Principal:
    """The caller, checked before the body is read: 401 without a key, 403 without the right."""
    principal = request_principal(request.state)
    if principal is None:  # the middleware saw no key
        principal = await run_in_threadpool(authenticate, request.headers.get("x-api-key"))
    principal.require("events:write")
    return principal


async def _post_event(request: Request, source: str) -> Response:
    principal = await ingesting_principal(request)
    idempotency_key = request.headers.get("x-idempotency-key")
    body = await read_json(request)
    if isinstance(body, dict) and "source" not in body:
        body = {**body, "source": source}
    event = parse_event(body)
    _check_idempotency_key(idempotency_key)
    (outcome,) = await ingest_events(
        principal, [NewEvent(event.type, event.source, event.data, idempotency_key)]
    )
    if isinstance(outcome, OrbinError):
        raise outcome
    return _json(outcome.answer(), 202)


_IDEMPOTENCY_DOC = (
    "The answer's ``id`` is the event's id, which every route takes (``GET /v1/events/{id}``, "
    "replay); ``eventId`` is an alias of it, and ``idempotencyKey`` the key sent, if any. "
    "The same ``x-idempotency-key`` with the same event returns the original answer (same "
    "id and runIds) and starts nothing, however many times and however concurrently it "
    "is sent. The same key with a different event (type, source or data) is refused with "
    "409 ``conflict`` naming the original event's id: the original is kept, and nothing is "
    "silently dropped."
)


# The one ingestion contract, at the API's path and at the PRD's.
_INGEST: dict[str, Any] = {
    "status_code": 202,
    "response_model": EventAccepted,
    "openapi_extra": _BODY_DOC,
    "responses": {
        **_ERRORS,
        409: {"description": "The idempotency key was used for another event"},
    },
}


@router.post(
    "/v1/events",
    **_INGEST,
    summary="Ingest an event",
    description="Store the event and start every active workflow whose event trigger "
    "matches. The answer is sent once the event is committed.\n\n" + _IDEMPOTENCY_DOC,
)
async def post_event(request: Request) -> Response:
    return await _post_event(request, "api")


@router.post(
    "/api/webhooks/ingest",
    **_INGEST,
    summary="Ingest an event (the PRD's path)",
    description="As ``POST /v1/events``; ``source`` defaults to ``webhook``.\n\n"
    + _IDEMPOTENCY_DOC,
)
async def post_webhook_ingest(request: Request) -> Response:
    return await _post_event(request, "webhook")


def _parse_batch(body: Any, max_events: int) -> list[BatchEventIn | InvalidInput]:
    if not isinstance(body, dict):
        raise InvalidInput(
            'the body must be a JSON object {"events": [...]}',
            details=[{"field": "body", "message": "expected an object"}],
        )
    extra = sorted(set(body) - {"events"})
    if extra:
        raise InvalidInput(
            f"unknown field(s): {', '.join(map(str, extra))}",
            details=[{"field": f, "message": "Extra inputs are not permitted"} for f in extra],
        )
    events = body.get("events")
    if not isinstance(events, list):
        raise InvalidInput(
            "events must be a list of events", details=[{"field": "events", "message": "list"}]
        )
    if not events:
        raise InvalidInput("events is empty", details=[{"field": "events"}])
    if len(events) > max_events:
        raise ApiError(
            413,
            "too_many_events",
            f"a batch holds at most {max_events} events (got {len(events)}); split it",
            [{"field": "events", "maxItems": max_events}],
        )
    try:  # all at once; event by event only to tell which are invalid
        return list(_BATCH_EVENTS.validate_python(events))
    except ValidationError:
        pass
    out: list[BatchEventIn | InvalidInput] = []
    for item in events:
        try:
            out.append(BatchEventIn.model_validate(item))
        except ValidationError as exc:
            out.append(_invalid(exc))
    return out


def _item(index: int, outcome: IngestResult | OrbinError) -> dict[str, Any]:
    if isinstance(outcome, IngestResult):
        return {
            "index": index,
            "status": 202,
            "id": outcome.event_pk,
            "eventId": outcome.event_pk,
            "idempotencyKey": outcome.idempotency_key,
            "runIds": outcome.run_ids,
        }
    kinds = ((Conflict, 409), (InvalidInput, 422), (LimitExceeded, 429))
    status = next((code for kind, code in kinds if isinstance(outcome, kind)), 422)
    item: dict[str, Any] = {"index": index, "status": status}
    if isinstance(outcome, Conflict | LimitExceeded) and outcome.details:
        # The event it concerns: the original (409) or the dead letter stored (429).
        item["id"] = item["eventId"] = outcome.details[0].get("id")
    item["error"] = error_body(outcome.code, outcome.message, outcome.details)["error"]
    return item


@router.post(
    "/v1/events/batch",
    response_model=BatchAccepted,
    status_code=202,
    openapi_extra=_BATCH_DOC,
    responses={
        **_ERRORS,
        207: {"model": BatchAccepted, "description": "Some events were not accepted"},
        413: {"description": "More events than ORBIN_MAX_BATCH_EVENTS, or the body too large"},
    },
    summary="Ingest up to ORBIN_MAX_BATCH_EVENTS events at once",
)
async def post_events_batch(request: Request) -> Response:
    """Ingest many events in one call and one transaction; each is answered on its own.

    Body: ``{"events": [{"type", "source"?, "data"?, "idempotencyKey"?}, ...]}`` with at
    most ``ORBIN_MAX_BATCH_EVENTS`` events (100 by default; more is a 413). The answer is
    ``{"results": [{"index", "status", "id", "eventId", "idempotencyKey", "runIds"} |
    {"index", "status", "error"}]}`` in the order sent (``eventId`` is an alias of ``id``),
    where status is 202 (accepted, or an idempotent repeat), 409 (the
    idempotency key was used for a different event; id names it), 422 (the event is
    invalid; the error names the field) or 429 (the monthly execution limit refused its
    runs). One bad event never rejects the others. The whole answer is **202** when every
    event was accepted and **207** (Multi-Status) otherwise. A batch counts as one request
    against the rate limit.
    """
    principal = await ingesting_principal(request)
    if request.headers.get("x-idempotency-key") is not None:
        raise InvalidInput(
            "a batch takes an idempotencyKey per event, not the x-idempotency-key header",
            details=[{"field": "x-idempotency-key"}],
        )
    body = await read_json(request)
    parsed = _parse_batch(body, get_settings().max_batch_events)
    valid = [(i, p) for i, p in enumerate(parsed) if isinstance(p, BatchEventIn)]
    outcomes = (
        await ingest_events(
            principal, [NewEvent(p.type, p.source, p.data, p.idempotencyKey) for _, p in valid]
        )
        if valid
        else []
    )
    results: list[dict[str, Any]] = [
        _item(i, p) for i, p in enumerate(parsed) if isinstance(p, InvalidInput)
    ]
    results += [_item(i, o) for (i, _), o in zip(valid, outcomes, strict=True)]
    results.sort(key=lambda r: r["index"])
    status = 202 if all(r["status"] == 202 for r in results) else 207
    return _json({"results": results}, status)


EventStatus = Literal["pending", "processed", "failed", "discarded"]
TIME_DOC = "ms since the epoch, or ISO 8601 (2026-12-01, 2026-12-01T10:00:00Z)"


@router.get("/v1/events", response_model=EventsPage, summary="List events, newest first")
def list_events(
    session: SessionDep,
    principal: Allowed("events:read"),
    type: str | None = Query(None, description="an event type, or a prefix pattern: order.*"),
    source: str | None = None,
    status: EventStatus | None = None,
    since: str | None = Query(None, max_length=40, description=TIME_DOC),
    until: str | None = Query(None, max_length=40, description=TIME_DOC + " (excluded)"),
    idempotencyKey: str | None = Query(  # noqa: N803 - the API's field name
        None, max_length=200, description="the event sent with this idempotency key"
    ),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=36, description="nextCursor of the last page"),
) -> EventsPage:
    rows = events_repo.read_events(
        session,
        organization_id=principal.organization_id,
        limit=limit + 1,
        before=cursor,
        event_type=type,
        source=source,
        status=status,
        since=parse_instant(since, field="since"),
        until=parse_instant(until, field="until"),
        idempotency_key=idempotencyKey,
    )
    return EventsPage.of_rows(page(rows, limit), EventPublic.of)


@router.get(
    "/v1/events/{event_id}",
    response_model=EventDetail,
    summary="One event, with the runs it started",
)
def get_event(event_id: str, session: SessionDep, principal: Allowed("events:read")) -> EventDetail:
    event = events_repo.read_event(
        session, organization_id=principal.organization_id, event_id=event_id
    )
    runs = runs_repo.read_runs_for_event(
        session, organization_id=principal.organization_id, event_pk=event.id
    )
    return EventDetail(**EventPublic.of(event).model_dump(), runs=[RunPublic.of(r) for r in runs])
