"""/docs and /redoc work on a machine without internet: every script, style and image they
load is served by the API itself, from the installed package."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

_REFS = re.compile(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""")


def _references(html: str) -> list[str]:
    return [u for u in _REFS.findall(html) if not u.startswith("#")]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_same_origin_assets_that_answer(api, page: str) -> None:
    r = api.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    refs = _references(r.text)
    assert refs, r.text  # the page does reference its assets
    assert "/openapi.json" in refs
    for url in refs:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from elsewhere"
        assert url.startswith("/"), url
    assets = [u for u in refs if u.endswith((".js", ".css", ".png"))]
    kinds = {u.rsplit(".", 1)[1] for u in assets}
    assert "js" in kinds and (page == "/redoc" or "css" in kinds), refs
    for url in assets:
        got = api.get(url)
        assert got.status_code == 200, url
        want = {"js": "javascript", "css": "text/css", "png": "image/png"}[url.rsplit(".", 1)[1]]
        assert want in got.headers["content-type"], (url, got.headers["content-type"])
        assert len(got.content) > 1000, url
    assert "fonts.googleapis" not in r.text and "cdn." not in r.text


def test_swagger_ui_shows_no_validator_badge_fetched_from_outside(api) -> None:
    html = api.get("/docs").text
    assert '"validatorUrl": null' in html
    assert api.get("/openapi.json").status_code == 200
