"""Custom webhooks: a JSON body POSTed to the integration's URL, signed with its secret.

``Orbin-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``: the scheme Orbin itself
verifies on inbound webhooks (orbin_flows/signatures.py), so two Orbins can talk.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from orbin_flows.integrations import http
from orbin_flows.integrations.errors import ProviderError, retry_after_seconds
from orbin_flows.signatures import orbin_header
from tenancy.integrations import ResolvedIntegration

MAX_ANSWER_CHARS = 64 * 1024


async def send(
    integration: ResolvedIntegration,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    url = integration.config["url"]
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    secret = integration.credentials["signingSecret"]
    sent = {
        **(headers or {}),
        "content-type": "application/json",
        "user-agent": "Orbin-Webhook/1",
        "orbin-signature": orbin_header(secret, raw, int(time.time())),
    }
    try:
        resp = await http.async_client().post(url, content=raw, headers=sent, timeout=timeout)
    except http.EgressRefused as exc:
        raise ProviderError(str(exc)) from exc
    except httpx.TimeoutException as exc:
        raise ProviderError(f"POST {url} timed out after {timeout}s", retryable=True) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(f"POST {url} failed: {exc}", retryable=True) from exc
    text = resp.text[:MAX_ANSWER_CHARS]
    try:
        answer: Any = json.loads(text) if text else None
    except ValueError:
        answer = text
    if resp.is_success:
        return {"status": resp.status_code, "body": answer}
    message = f"POST {url} answered {resp.status_code}: {text[:300]}"
    retryable = resp.status_code >= 500 or resp.status_code == 429
    raise ProviderError(
        message,
        retryable=retryable,
        retry_after=retry_after_seconds(resp.headers.get("retry-after")),
    )


async def test(integration: ResolvedIntegration) -> str:
    """A signed ping: the receiver verifies the signature the way it will for real calls."""
    out = await send(
        integration, {"type": "orbin.ping", "integration": integration.name}, timeout=10.0
    )
    return f"the endpoint answered {out['status']} to a signed ping"
