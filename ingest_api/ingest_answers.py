"""The way back from the group-commit writer (a thread) to the requests that wait on it (on
an event loop): ``ingest_events`` submits a request's events and awaits their outcomes."""

from __future__ import annotations

import asyncio
import threading
import weakref
from dataclasses import replace
from functools import partial
from typing import Any

from orbin_flows.ingest import NewEvent, Outcome
from orbin_flows.ingest_writer import ingest_writer
from telemetry import tracing
from tenancy.principal import Principal


class _Answers:
    """Hands the writer's outcomes to the waiting requests of one event loop.

    The writer finishes a batch of requests at once; their answers cross over to the loop in
    one wake-up (one ``call_soon_threadsafe``), not one per request.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)  # not kept alive by its entry in _answers
        self.lock = threading.Lock()
        self.ready: list[tuple[asyncio.Future[list[Outcome]], Any]] = []

    def deliver(self, future: asyncio.Future[list[Outcome]], outcome: Any) -> None:
        with self.lock:
            self.ready.append((future, outcome))
            if len(self.ready) > 1:
                return  # a wake-up is already on its way
        loop = self.loop()
        if loop is not None:
            loop.call_soon_threadsafe(self.flush)

    def flush(self) -> None:
        with self.lock:
            ready, self.ready = self.ready, []
        for future, outcome in ready:
            if future.cancelled():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


_answers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Answers] = (
    weakref.WeakKeyDictionary()
)


async def ingest_events(principal: Principal, events: list[NewEvent]) -> list[Outcome]:
    """Written by this process's group-commit writer with other requests' events; the
    outcomes come back once they are committed."""
    loop = asyncio.get_running_loop()
    answers = _answers.get(loop)
    if answers is None:
        answers = _answers[loop] = _Answers(loop)
    future: asyncio.Future[list[Outcome]] = loop.create_future()
    traceparent = tracing.current_traceparent()  # the runs these start join the trace
    if traceparent:
        events = [replace(e, traceparent=traceparent) for e in events]
    ingest_writer().submit_then(principal, events, partial(answers.deliver, future))
    return await future
