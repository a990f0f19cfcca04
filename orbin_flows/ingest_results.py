"""What ingesting an event answers: the accepted event (the 202 answer), or why not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenancy import events as events_repo
from tenancy.errors import Conflict, ExecutionLimitReached, LimitExceeded, OrbinError
from tenancy.events import Event


@dataclass(frozen=True)
class IngestResult:
    """An accepted event. ``event_pk`` is its id: the one every route accepts."""

    event_pk: str
    run_ids: list[str]
    duplicate: bool
    type: str = ""
    source: str = ""
    received_at: int = 0
    idempotency_key: str | None = None
    failure: OrbinError | None = None  # stored, but as a dead letter (e.g. the monthly limit)

    def answer(self) -> dict[str, Any]:
        """The 202 answer: the event's fields that never change (an idempotent repeat gets
        the same bytes); ``eventId`` is an alias of ``id``."""
        return accepted_answer(
            event_pk=self.event_pk,
            idempotency_key=self.idempotency_key,
            event_type=self.type,
            source=self.source,
            received_at=self.received_at,
            run_ids=self.run_ids,
        )

    def raise_failure(self) -> None:
        """Raise the failure once the transaction that stored the dead letter committed."""
        if self.failure is not None:
            raise self.failure


def accepted_answer(
    *,
    event_pk: str,
    idempotency_key: str | None,
    event_type: str,
    source: str,
    received_at: int,
    run_ids: list[str],
) -> dict[str, Any]:
    """What ingestion (the API, a webhook, an ``emit`` step) answers for an accepted event."""
    return {
        "received": True,
        "id": event_pk,
        "eventId": event_pk,
        "idempotencyKey": idempotency_key,
        "type": event_type,
        "source": source,
        "receivedAt": received_at,
        "runIds": run_ids,
    }


def stored_result(event: Event, *, duplicate: bool) -> IngestResult:
    return IngestResult(
        event.id,
        list(event.run_ids or []),
        duplicate,
        event.event_type,
        event.source,
        event.created_at,
        events_repo.idempotency_key(event),
    )


@dataclass(frozen=True)
class NewEvent:
    type: str
    source: str
    data: Any
    idempotency_key: str | None = None
    # Who sent it, when not the principal the batch is ingested as (group commit).
    key_id: str | None = None
    user_id: str | None = None
    traceparent: str | None = None  # W3C trace context of the request (when tracing is on)

    def same_as(self, other: NewEvent) -> bool:
        return (self.type, self.source, self.data) == (other.type, other.source, other.data)


Outcome = IngestResult | OrbinError
Done = Callable[[list[Outcome] | BaseException], None]


def reused_key(event_pk: str | None, key: str) -> Conflict:
    """The key names another event: stored (``event_pk``), or one a concurrent request is
    storing (None: its id is not known here)."""
    if event_pk is None:
        return Conflict(
            f"the idempotency key {key!r} is being used by another request for a different "
            "event; send a new event with a new key",
            details=[{"field": "idempotencyKey", "idempotencyKey": key}],
        )
    return Conflict(
        f"this idempotency key was already used for a different event ({event_pk}); "
        "send a new event with a new key",
        details=[
            {"field": "idempotencyKey", "id": event_pk, "eventId": event_pk, "idempotencyKey": key}
        ],
    )


def limit_error(event_pk: str) -> LimitExceeded:
    return ExecutionLimitReached(
        "the monthly execution limit of this organization's plan is reached; the event was "
        f"stored as a dead letter ({event_pk}) and can be retried once the limit allows "
        "(upgrade the plan or wait for the next period)",
        details=[{"id": event_pk, "eventId": event_pk}],
    )
