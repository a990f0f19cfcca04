"""Orbin's Prometheus metrics: one registry per process, names prefixed ``orbin_``.

Labels carry no tenant data beyond the organization's slug (never ids, keys, event types or
payloads), so a scrape can be shared with operators who must not see tenants' data.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from telemetry.settings import get_telemetry_settings

log = logging.getLogger("orbin.telemetry")

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_STEPS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

EVENTS_ACCEPTED = Counter(
    "orbin_events_accepted", "Events stored by ingestion", ["org"], registry=REGISTRY
)
EVENTS_REFUSED = Counter(
    "orbin_events_refused",
    "Ingestion requests refused, by reason (an HTTP status class name)",
    ["reason"],
    registry=REGISTRY,
)
INGEST_BATCH_REQUESTS = Histogram(
    "orbin_ingest_batch_requests",
    "Requests written together by one group commit of the ingest writer",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
    registry=REGISTRY,
)
INGEST_BATCH_SECONDS = Histogram(
    "orbin_ingest_batch_seconds",
    "Time to write one group commit of the ingest writer",
    buckets=_FAST,
    registry=REGISTRY,
)
INGEST_QUEUE = Gauge(
    "orbin_ingest_queue_requests",
    "Ingest requests waiting for the writer",
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "orbin_http_requests",
    "API requests answered, by route template, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "orbin_http_request_seconds",
    "API request latency, by route template",
    ["route"],
    buckets=_FAST,
    registry=REGISTRY,
)
HTTP_IN_FLIGHT = Gauge("orbin_http_in_flight", "API requests being answered", registry=REGISTRY)
RUNS_STARTED = Counter(
    "orbin_runs_started", "Runs a worker began executing", ["org"], registry=REGISTRY
)
RUNS_FINISHED = Counter(
    "orbin_runs_finished", "Runs finished, by final status", ["org", "status"], registry=REGISTRY
)
RUNS_ACTIVE = Gauge("orbin_worker_active_runs", "Runs this worker holds", registry=REGISTRY)
STEP_SECONDS = Histogram(
    "orbin_step_duration_seconds",
    "Duration of one step attempt, by outcome",
    ["org", "status"],
    buckets=_STEPS,
    registry=REGISTRY,
)
STEP_RETRIES = Counter(
    "orbin_step_retries", "Step attempts that will be retried", ["org"], registry=REGISTRY
)
PREFECT_SECONDS = Histogram(
    "orbin_prefect_call_seconds",
    "Latency of calls to the Prefect API, by operation",
    ["operation"],
    buckets=_FAST,
    registry=REGISTRY,
)
PREFECT_ERRORS = Counter(
    "orbin_prefect_call_errors",
    "Failed calls to the Prefect API, by operation",
    ["operation"],
    registry=REGISTRY,
)
STREAM_CLIENTS = Gauge(
    "orbin_stream_clients", "Clients connected to GET /v1/stream", registry=REGISTRY
)
SHUTTING_DOWN = Gauge(
    "orbin_shutting_down", "1 while this process drains before exiting", registry=REGISTRY
)


class _Prefect:
    """``with prefect_call("create_flow_run"):`` times a call and counts its failure."""

    def __init__(self, operation: str) -> None:
        self.operation = operation

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        PREFECT_SECONDS.labels(self.operation).observe(time.perf_counter() - self.t0)
        if exc_type is not None and not issubclass(exc_type, BaseExceptionGroup | GeneratorExit):
            PREFECT_ERRORS.labels(self.operation).inc()


def prefect_call(operation: str) -> _Prefect:
    return _Prefect(operation)


OutboxProbe = Callable[[], tuple[int, float]]


class _OutboxCollector(Collector):
    """Outbox depth and the age of its oldest item, read from the database at scrape time
    (at most every 2 s) through a probe the process registers (it owns the database)."""

    def __init__(self) -> None:
        self.probe: OutboxProbe | None = None
        self._cached: tuple[float, int, float] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.probe is None:
            return
        now = time.monotonic()
        if self._cached is None or self._cached[0] < now:
            try:
                depth, age = self.probe()
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail with the database
                log.warning("outbox metrics unavailable: %s", exc)
                return
            self._cached = (now + 2.0, depth, age)
        _, depth, age = self._cached
        yield GaugeMetricFamily("orbin_outbox_depth", "Outbox items not done yet", value=depth)
        yield GaugeMetricFamily(
            "orbin_outbox_oldest_age_seconds", "Age of the oldest outbox item not done", value=age
        )


_OUTBOX = _OutboxCollector()
REGISTRY.register(_OUTBOX)


def set_outbox_probe(probe: OutboxProbe | None) -> None:
    _OUTBOX.probe = probe
    _OUTBOX._cached = None


def authorized(authorization: str | None) -> bool:
    """True when no ``ORBIN_METRICS_TOKEN`` is set, or the header carries it as a bearer."""
    token = get_telemetry_settings().metrics_token
    if token is None or not token.get_secret_value():
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.get_secret_value().encode()
    )


def exposition() -> tuple[bytes, str]:
    """The registry in Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
