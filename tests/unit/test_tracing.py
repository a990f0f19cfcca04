"""Traces: off at no cost by default; with a provider, the ingest request's span honours an
incoming W3C traceparent and its trace id is the run's ``traceId``."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from telemetry import tracing
from tests.unit.ingest_support import active_workflow

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans():
    assert tracing.setup_tracing("orbin-test", exporter=EXPORTER)
    EXPORTER.clear()
    yield EXPORTER
    tracing.reset_tracing()


def _server_span(exporter: InMemorySpanExporter, name: str):
    (span,) = [
        s for s in exporter.get_finished_spans() if s.name == name and s.kind == SpanKind.SERVER
    ]
    return span


def test_tracing_is_off_without_an_endpoint(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert tracing.setup_tracing("orbin-test") is False
    assert tracing.current_traceparent() is None


def test_ingest_span_honours_traceparent_and_the_run_carries_the_trace(
    api, make_org, spans
) -> None:
    org = make_org("traced")
    active_workflow(org.id, "traced.go")
    h = {"x-api-key": org.key, "traceparent": f"00-{TRACE}-{PARENT}-01"}
    resp = api.post("/v1/events", headers=h, json={"type": "traced.go"})
    assert resp.status_code == 202, resp.text
    (run_id,) = resp.json()["runIds"]

    run = api.get(f"/v1/runs/{run_id}", headers={"x-api-key": org.key}).json()
    assert run["traceId"] == TRACE

    ingest = _server_span(spans, "POST /v1/events")
    assert format(ingest.context.trace_id, "032x") == TRACE
    assert format(ingest.parent.span_id, "016x") == PARENT
    assert ingest.attributes["http.response.status_code"] == 202
    assert ingest.attributes["http.route"] == "/v1/events"  # a template, never a raw path


def test_a_request_without_traceparent_starts_its_own_trace(api, make_org, spans) -> None:
    org = make_org("untraced")
    active_workflow(org.id, "fresh.go")
    resp = api.post("/v1/events", headers={"x-api-key": org.key}, json={"type": "fresh.go"})
    (run_id,) = resp.json()["runIds"]
    run = api.get(f"/v1/runs/{run_id}", headers={"x-api-key": org.key}).json()
    ingest = _server_span(spans, "POST /v1/events")
    assert ingest.parent is None
    assert run["traceId"] == format(ingest.context.trace_id, "032x")
