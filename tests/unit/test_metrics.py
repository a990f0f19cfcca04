"""/metrics, /livez and /readyz on the API, over HTTP, and the worker's ops server."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from telemetry import metrics
from telemetry.server import OpsServer
from telemetry.settings import reset_telemetry_settings


@pytest.fixture(autouse=True)
def _fresh_settings():
    reset_telemetry_settings()
    yield
    reset_telemetry_settings()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(text: str, name: str, **labels: str) -> float:
    return _samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_accepted_and_refused_events(api, make_org) -> None:
    org = make_org("metrics-org")
    before = api.get("/metrics").text
    for i in range(3):
        r = api.post(
            "/v1/events", json={"type": "m.t", "data": {"i": i}}, headers={"x-api-key": org.key}
        )
        assert r.status_code == 202, r.text
    assert (
        api.post("/v1/events", json={"type": "m.t"}, headers={"x-api-key": "sk_wrong"}).status_code
        == 401
    )
    assert (
        api.post(
            "/v1/events",
            content=b"{",
            headers={"x-api-key": org.key, "content-type": "application/json"},
        ).status_code
        == 400
    )

    resp = api.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert "# TYPE orbin_events_accepted_total counter" in text
    accepted = _value(text, "orbin_events_accepted_total", org="metrics-org")
    assert accepted - _value(before, "orbin_events_accepted_total", org="metrics-org") == 3
    for reason in ("unauthenticated", "invalid_json"):
        grew = _value(text, "orbin_events_refused_total", reason=reason) - _value(
            before, "orbin_events_refused_total", reason=reason
        )
        assert grew == 1, reason
    assert _value(text, "orbin_ingest_batch_requests_count") >= 3
    # Route templates, never raw paths (they hold ids) nor tenant data beyond the org slug.
    assert (
        _value(text, "orbin_http_requests_total", route="/v1/events", method="POST", status="202")
        >= 3
    )
    assert org.key not in text and "m.t" not in text
    # The outbox probe answers from the database.
    assert ("orbin_outbox_depth", ()) in _samples(text)


def test_metrics_token_is_required_when_set(api, monkeypatch) -> None:
    monkeypatch.setenv("ORBIN_METRICS_TOKEN", "s3cret-token")
    reset_telemetry_settings()
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers={"authorization": "Bearer nope"}).status_code == 401
    ok = api.get("/metrics", headers={"authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and "orbin_" in ok.text


def test_livez_and_readyz(api) -> None:
    assert api.get("/livez").json() == {"status": "ok"}
    ready = api.get("/readyz")  # no Prefect server in unit tests: not ready, and it says why
    body = ready.json()
    assert ready.status_code == 503 and body["checks"]["database"] == "ok"
    assert body["checks"]["prefect"] != "ok"


def test_prefect_call_timer_counts_errors() -> None:
    before = metrics.PREFECT_ERRORS.labels("test_op")._value.get()
    with metrics.prefect_call("test_op"):
        pass
    with pytest.raises(RuntimeError), metrics.prefect_call("test_op"):
        raise RuntimeError("down")
    assert metrics.PREFECT_ERRORS.labels("test_op")._value.get() - before == 1
    text = metrics.exposition()[0].decode()
    assert re.search(r'orbin_prefect_call_seconds_count\{operation="test_op"\} 2', text)


def test_ops_server_serves_metrics_and_health(monkeypatch) -> None:
    state = {"ready": True}
    server = OpsServer("127.0.0.1", 0, lambda: (True, state["ready"], {"prefect": "ok"})).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert "# TYPE orbin_runs_started_total counter" in httpx.get(base + "/metrics").text
        assert httpx.get(base + "/readyz").status_code == 200
        state["ready"] = False
        assert httpx.get(base + "/readyz").status_code == 503
        assert httpx.get(base + "/livez").status_code == 200
        monkeypatch.setenv("ORBIN_METRICS_TOKEN", "t0k")
        reset_telemetry_settings()
        assert httpx.get(base + "/metrics").status_code == 401
        assert (
            httpx.get(base + "/metrics", headers={"authorization": "Bearer t0k"}).status_code == 200
        )
    finally:
        server.stop()
