"""Deleting an organization on the real platform: its Prefect work pool, made when the
organization was, is gone from the Prefect server afterwards, and its key is refused."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.services import Platform

pytestmark = pytest.mark.prefect


def test_deleting_an_organization_removes_its_work_pool(platform_sqlite: Platform) -> None:
    p = platform_sqlite
    slug = f"gone-{uuid.uuid4().hex[:6]}"
    api = httpx.Client(base_url=p.api_url, timeout=60)
    body = {"email": f"{slug}@del.test", "password": "a long passphrase", "name": "O"}
    token = api.post("/v1/auth/signup", json=body).json()["token"]
    h = {"authorization": f"Bearer {token}", "x-orbin-org": slug}
    created = api.post("/v1/orgs", json={"name": "Gone", "slug": slug}, headers=h)
    assert created.status_code == 201 and created.json()["workPool"]["ready"] is True
    pool = f"{p.prefect_api_url}/work_pools/orbin-{slug}"
    assert httpx.get(pool, timeout=10).status_code == 200
    key = api.post("/v1/api-keys", json={"name": "k", "type": "secret"}, headers=h).json()["key"]

    r = api.delete(f"/v1/orgs/current?confirm={slug}", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["workPool"] == {"name": f"orbin-{slug}", "deleted": True}
    assert httpx.get(pool, timeout=10).status_code == 404
    assert api.get("/v1/runs", headers={"x-api-key": key}).status_code == 401
