"""OpenTelemetry traces: off (the API's no-op tracer, no cost) unless
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, then exported over OTLP/HTTP in batches.

One trace runs from the ingest request (an incoming W3C ``traceparent`` is honoured) through
the run to each step: the request's span context is stored on the run (``traceparent``), and
the worker opens the run's span as its child. Tests install an in-memory exporter with
``setup_tracing(exporter=...)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_state: dict[str, Any] = {"enabled": False}


def setup_tracing(service_name: str, *, exporter: Any = None) -> bool:
    """Install a tracer provider when an OTLP endpoint is configured (or ``exporter`` given);
    returns whether traces are recorded. Safe to call more than once.

    The provider is the process's global one: FastAPI (0.150+) instruments every request
    with it (a server span per request, child of an incoming ``traceparent``)."""
    if _state["enabled"]:
        return True
    if exporter is None and not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = _state.get("provider")
    if provider is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        trace.set_tracer_provider(provider)
        _state["provider"] = provider
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter not in _state.setdefault("exporters", []):
        _state["exporters"].append(exporter)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _state["enabled"] = True
    return True


def enabled() -> bool:
    return bool(_state["enabled"])


def tracer() -> trace.Tracer:
    provider = _state.get("provider")
    return (provider or trace.get_tracer_provider()).get_tracer("orbin")


def extract(headers: Mapping[str, str]) -> context.Context:
    return _PROPAGATOR.extract(carrier=dict(headers))


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to store on what the request starts."""
    if not _state["enabled"]:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> context.Context | None:
    return _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id in a ``traceparent`` (``00-<trace id>-<span id>-<flags>``)."""
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def reset_tracing() -> None:
    """Back to off for Orbin's own spans (tests; the global provider cannot be replaced)."""
    _state["enabled"] = False
