"""Times: answers in ms; time parameters take ms or ISO 8601, and a value that can only be
seconds is a 422 saying so (issue 10: since=<seconds> silently matched everything). SQLite
and PostgreSQL, over HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tenancy.clock import parse_instant
from tenancy.errors import InvalidInput

SECONDS = str(int(time.time()))  # ten digits


def test_parse_instant_reads_ms_and_iso_and_refuses_seconds() -> None:
    assert parse_instant("1796246009200", field="since") == 1796246009200
    assert parse_instant(1796246009200, field="since") == 1796246009200
    assert parse_instant("0", field="since") == 0
    assert parse_instant("2026-12-01", field="since") == 1796083200000
    assert parse_instant("2026-12-01", field="to", end=True) == 1796083200000 + 86_400_000
    assert parse_instant("2026-12-01T10:00:00Z", field="since") == 1796119200000
    assert parse_instant("2026-12-01T11:00:00+01:00", field="since") == 1796119200000
    assert parse_instant("2026-12-01T10:00:00.250", field="since") == 1796119200250
    assert parse_instant(None, field="since") is None
    for bad in ("yesterday", "-5", "1.5e12", "2026-13-01", True):
        with pytest.raises(InvalidInput, match="since must be milliseconds"):
            parse_instant(bad, field="since")
    with pytest.raises(InvalidInput, match="looks like seconds") as err:
        parse_instant(SECONDS, field="since")
    assert str(int(SECONDS) * 1000) in err.value.message


@pytest.fixture
def org(make_org):
    return make_org("acme")


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/events", "since"),
        ("/v1/events", "until"),
        ("/v1/dead-letters", "since"),
        ("/v1/audit-logs", "until"),
        ("/v1/audit-logs/export", "since"),
        ("/v1/ai/usage", "start"),
        ("/v1/usage", "from"),
    ],
)
def test_seconds_are_a_422_that_says_so(api, org, path, param) -> None:
    r = api.get(path, params={param: SECONDS}, headers={"x-api-key": org.key})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert "seconds" in err["message"] and param in err["message"]
    assert err["details"][0]["field"] == param
    garbage = api.get(path, params={param: "last tuesday"}, headers={"x-api-key": org.key})
    assert garbage.status_code == 422 and param in garbage.json()["error"]["message"]


def test_bodies_take_the_same_times(api, org) -> None:
    h = {"x-api-key": org.key}
    r = api.post("/v1/events/replay", json={"filter": {"since": int(SECONDS)}}, headers=h)
    assert r.status_code == 422 and "filter.since" in r.json()["error"]["message"]
    key = api.post("/v1/api-keys", json={"name": "s", "expiresAt": int(SECONDS)}, headers=h)
    assert key.status_code == 422 and "seconds" in key.json()["error"]["message"]
    iso = api.post("/v1/api-keys", json={"name": "i", "expiresAt": "2099-01-01"}, headers=h)
    assert iso.status_code == 201, iso.text
    assert iso.json()["expiresAt"] == int(datetime(2099, 1, 1, tzinfo=UTC).timestamp() * 1000)


def test_iso_and_ms_select_the_same_events(api, org) -> None:
    h = {"x-api-key": org.key}
    first = api.post("/v1/events", json={"type": "t.one"}, headers=h).json()
    time.sleep(0.01)
    second = api.post("/v1/events", json={"type": "t.two"}, headers=h).json()
    cut = second["receivedAt"]
    as_iso = datetime.fromtimestamp(cut / 1000, UTC).isoformat(timespec="milliseconds")

    def types(**params) -> list[str]:
        r = api.get("/v1/events", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [e["type"] for e in r.json()["data"]]

    assert types(since=cut) == types(since=as_iso) == ["t.two"]
    assert types(until=cut) == types(until=as_iso.replace("+00:00", "Z")) == ["t.one"]
    assert first["receivedAt"] < cut
    day = datetime.fromtimestamp(cut / 1000, UTC).date().isoformat()
    assert types(since=day) == ["t.two", "t.one"]
