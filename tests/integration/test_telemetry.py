"""One trace from the ingest request through the run to each step, exported over OTLP to a
local collector (a small HTTP server speaking OTLP/HTTP protobuf), across the API and worker
processes; the run's ``traceId`` is the incoming ``traceparent``'s."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.orbin_client import Orbin
from tests.support.rig import Rig, start_rig

pytestmark = pytest.mark.prefect

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


class Collector:
    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                req = ExportTraceServiceRequest.FromString(body)
                for rs in req.resource_spans:
                    service = next(
                        a.value.string_value
                        for a in rs.resource.attributes
                        if a.key == "service.name"
                    )
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            outer.spans.append(
                                {
                                    "service": service,
                                    "name": s.name,
                                    "trace": s.trace_id.hex(),
                                    "span": s.span_id.hex(),
                                    "parent": s.parent_span_id.hex(),
                                }
                            )
                out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, collector: Collector) -> Iterator[Rig]:
    r = start_rig(
        tmp_path_factory.mktemp("telemetry-rig"),
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    try:
        yield r
    finally:
        r.stop()


def test_one_trace_from_the_request_through_the_run_to_each_step(
    rig: Rig, collector: Collector
) -> None:
    orbin = Orbin(rig.api_url, rig.key, rig.prefect_api_url)
    step = {"type": "action", "config": {"action": "transform", "output": 1}}
    orbin.create(
        {
            "name": "Traced",
            "slug": "traced",
            "trigger": {"type": "event", "config": {"eventType": "traced.go"}},
            "steps": [{"id": "a", "name": "A", **step}, {"id": "b", "name": "B", **step}],
        }
    )
    rig.start_worker("w")
    rig.wait_worker_ready("w")
    time.sleep(1.5)  # the API's trigger cache
    resp = rig.call(
        "POST",
        "/v1/events",
        json={"type": "traced.go"},
        headers={"traceparent": f"00-{TRACE}-{PARENT}-01"},
    )
    assert resp.status_code == 202, resp.text
    (run_id,) = resp.json()["runIds"]
    run = orbin.wait(run_id, seconds=60)
    assert run["status"] == "completed", run
    assert run["traceId"] == TRACE

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ours = [s for s in collector.spans if s["trace"] == TRACE]
        names = {s["name"] for s in ours}
        if {"POST /v1/events", "step a", "step b"} <= names and any(
            n.startswith("run ") for n in names
        ):
            break
        time.sleep(0.2)
    ours = [s for s in collector.spans if s["trace"] == TRACE]
    by_name = {s["name"]: s for s in ours}
    assert "POST /v1/events" in by_name, ours
    ingest = by_name["POST /v1/events"]
    assert ingest["service"] == "orbin-api" and ingest["parent"] == PARENT
    (run_span,) = [s for s in ours if s["name"].startswith("run ")]
    api_spans = {s["span"] for s in ours if s["service"] == "orbin-api"}
    assert run_span["service"] == "orbin-worker" and run_span["parent"] in api_spans
    parents = {s["span"]: s["parent"] for s in ours}

    def ancestors(span_id: str) -> list[str]:
        chain = []
        while span_id in parents:
            span_id = parents[span_id]
            chain.append(span_id)
        return chain

    for name in ("step a", "step b"):  # under the run (Prefect's task span may sit between)
        assert run_span["span"] in ancestors(by_name[name]["span"]), ours
