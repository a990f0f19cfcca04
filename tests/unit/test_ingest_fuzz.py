"""Random bodies and headers thrown at the ingestion routes: never a 5xx, on either database."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.ingest_support import active_workflow

PATHS = ["/v1/events", "/api/webhooks/ingest", "/v1/events/batch"]
CTYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/cloudevents+json",
    "text/plain",
    "",
    "application/yaml",
    "multipart/form-data; boundary=x",
]

# Any code point, lone surrogates and NUL included: sent escaped, or raw (invalid UTF-8).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    any_text,
    st.sampled_from(["\x00", "a\x00b", "\ud800", "\udfff x"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)
event_types = st.one_of(st.sampled_from(["a", "order.created", "x.y:z/1"]), st.text(max_size=12))
valid_types = st.sampled_from(["a", "order.created", "x.y:z/1"])
data = st.dictionaries(st.one_of(st.text(max_size=8), any_text), json_values, max_size=4)
good_event = st.fixed_dictionaries(
    {"type": valid_types, "data": data},
    optional={"source": st.one_of(st.text(max_size=10), any_text)},
)
weird_event = st.fixed_dictionaries(
    {"type": st.one_of(event_types, json_values)},
    optional={
        "source": st.one_of(st.text(max_size=10), json_values),
        "data": st.one_of(data, json_values),
        "idempotencyKey": st.one_of(st.text(max_size=5), json_values),
        "extra": json_values,
    },
)
batch_item = st.one_of(
    good_event,
    st.tuples(good_event, st.sampled_from(["k1", "k2", "\x00", "k" * 201])).map(
        lambda p: {**p[0], "idempotencyKey": p[1]}
    ),
    weird_event,
)
latin1 = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=12,
)


def _encode(value, raw: bytes | None, escape: bool) -> bytes:
    if raw is not None:
        return raw
    return json.dumps(value, ensure_ascii=escape).encode("utf-8", "surrogatepass")


bodies = st.one_of(
    good_event.map(lambda e: ("event", e)),
    good_event.map(lambda e: ("event", e)),
    weird_event.map(lambda e: ("event", e)),
    st.lists(batch_item, max_size=5).map(lambda es: ("batch", {"events": es})),
    json_values.map(lambda v: ("value", v)),
    st.binary(max_size=60).map(lambda b: ("raw", b)),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PATHS),
    body=bodies,
    ctype=st.one_of(st.just("application/json"), st.sampled_from(CTYPES), latin1)
    | st.just("application/json"),
    key=st.one_of(st.none(), latin1),
    escape=st.sampled_from([True, True, True, False]),
    use_key=st.sampled_from(["good"] * 8 + ["none", "bad"]),
)
def test_ingestion_never_answers_5xx(api, fuzz_org, path, body, ctype, key, escape, use_key):
    kind, value = body
    raw = value if kind == "raw" else None
    headers = {"content-type": ctype}
    if use_key != "none":
        headers["x-api-key"] = fuzz_org.key if use_key == "good" else "sk_live_" + (key or "x")
    if key is not None:
        headers["x-idempotency-key"] = key
    wire = {k: v.encode("latin-1") for k, v in headers.items()}  # any byte a client may send
    r = api.post(path, headers=wire, content=_encode(value, raw, escape))
    assert r.status_code < 500, (path, headers, value, r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json")
    answer = r.json()
    if r.status_code >= 400:
        assert answer["error"]["code"] and answer["error"]["message"]
    elif path.endswith("batch"):
        assert all(i["status"] in (202, 409, 422, 429) for i in answer["results"])
    else:
        assert r.status_code == 202 and answer["id"] == answer["eventId"]


import pytest  # noqa: E402


@pytest.fixture
def fuzz_org(make_org):
    org = make_org("fuzz", plan="enterprise")
    active_workflow(org.id, "*", slug="all")
    return org
