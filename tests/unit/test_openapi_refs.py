"""The OpenAPI document resolves: every ``$ref`` names something in the document, and a 405
carries ``Allow``."""

from __future__ import annotations

import json
import re


def test_every_ref_resolves(api) -> None:
    doc = api.get("/openapi.json").json()
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(doc)))
    assert refs, "the document uses references"
    for ref in refs:
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"unresolvable {ref}"
            node = node[part]


def test_405_carries_allow(api) -> None:
    r = api.delete("/v1/events")
    assert r.status_code == 405 and "POST" in r.headers["allow"]
