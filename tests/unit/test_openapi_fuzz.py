"""A bounded fuzz run of the OpenAPI document: every operation, with hostile path ids, query
values and bodies (NUL characters, integers beyond 64 bits, wrong types, empty and junk
bodies). Zero server errors, and zero statuses the document does not list."""

from __future__ import annotations

import json
import re
import uuid

import pytest

PATH_VALUES = ["a%00b", "x", str(uuid.uuid4()), str(10**40), "%2e%2e"]
QUERY_VALUES = ["a\x00b", str(2**63), str(-(2**63) - 1), "-1", "", "abc", "1.5", "true"]
BODIES = [None, {}, [], {"x": 2**70}, {"type": "a\x00b"}, "junk", {"graceSeconds": False}]


def _cases(doc: dict) -> list[tuple[str, str, dict, object]]:
    out = []
    for path, ops in doc["paths"].items():
        if "stream" in path:  # a live stream: its bad input only
            out += [("get", path, {"lastEventId": "a\x00b"}, None)]
            continue
        for method, op in ops.items():
            names = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
            for i, value in enumerate(PATH_VALUES):
                url = re.sub(r"\{[^}]+\}", value, path)
                query = {n: QUERY_VALUES[(i + j) % len(QUERY_VALUES)] for j, n in enumerate(names)}
                body = BODIES[i % len(BODIES)] if method in ("post", "put", "patch") else None
                out.append((method, url, query, body))
            for value in QUERY_VALUES:
                if names:
                    url = re.sub(r"\{[^}]+\}", "x", path)
                    out.append((method, url, dict.fromkeys(names, value), None))
            if method in ("post", "put", "patch"):
                url = re.sub(r"\{[^}]+\}", "x", path)
                out += [(method, url, {}, b) for b in BODIES]
    return out


def _documented(doc: dict, method: str, url: str) -> set[str]:
    for path, ops in doc["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"
        if re.match(pattern, url.split("?")[0]) and method in ops:
            return set(ops[method]["responses"])
    return set()


def test_no_server_error_and_no_undocumented_status(api, make_org) -> None:
    org = make_org("fuzz", plan="enterprise")
    doc = api.get("/openapi.json").json()
    cases = _cases(doc)
    assert len(cases) > 150
    errors, contradictions = [], []
    statuses: dict[int, int] = {}
    for method, url, query, body in cases:
        headers = {"x-api-key": org.key}
        kwargs: dict = {"params": query or None, "headers": headers}
        if isinstance(body, str):
            kwargs["content"] = body
            headers["content-type"] = "application/json"
        elif body is not None:
            kwargs["content"] = json.dumps(body)
            headers["content-type"] = "application/json"
        r = api.request(method.upper(), url, **kwargs)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if r.status_code >= 500 and r.status_code != 503:
            errors.append((method, url, query, body, r.status_code, r.text[:200]))
        documented = _documented(doc, method, url)
        if documented and str(r.status_code) not in documented:
            contradictions.append((method, url, query, r.status_code, sorted(documented)))
    print(f"{len(cases)} requests: {sorted(statuses.items())}")
    assert not errors, errors[:5]
    assert not contradictions, contradictions[:8]


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/events", "/v1/workflows"])
def test_every_operation_documents_its_errors(api, path) -> None:
    doc = api.get("/openapi.json").json()
    responses = doc["paths"][path]["get"]["responses"]
    assert {"400", "401", "403", "422", "429", "503"} <= set(responses)
