"""Slack through its own SDK (``slack_sdk.WebClient``), against ``baseUrl`` when set.

Calls are synchronous (the SDK's urllib client); steps run them in a thread.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from orbin_flows.integrations import http
from orbin_flows.integrations.errors import ProviderError, retry_after_seconds
from tenancy.integrations import ResolvedIntegration

DEFAULT_BASE_URL = "https://slack.com/api/"
# Errors that mean the token itself is no good: the integration needs a new one.
CREDENTIAL_ERRORS = {
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "no_permission",
    "missing_scope",
}

# The SDK logs request headers (the bearer token) at DEBUG: never let that through.
logging.getLogger("slack_sdk").setLevel(logging.INFO)


def base_url(config: dict[str, Any]) -> str:
    url = str(config.get("baseUrl") or DEFAULT_BASE_URL)
    return url if url.endswith("/") else url + "/"


def client(integration: ResolvedIntegration, timeout: int = 30) -> WebClient:
    url = http.provider_url(base_url(integration.config))
    return WebClient(token=integration.credentials["botToken"], base_url=url, timeout=timeout)


def _call(integration: ResolvedIntegration, method: str, **kwargs: Any) -> dict[str, Any]:
    """``method`` is the SDK's method name (``auth_test``, ``chat_postMessage``)."""
    try:
        resp = getattr(client(integration), method)(**kwargs)
    except SlackApiError as exc:
        status = exc.response.status_code
        error = str(exc.response.get("error") or f"HTTP {status}")
        raise ProviderError(
            f"Slack {method.replace('_', '.', 1)}: {error}",
            retryable=status == 429 or status >= 500 or error == "ratelimited",
            credential=error in CREDENTIAL_ERRORS,
            retry_after=retry_after_seconds(exc.response.headers.get("Retry-After")),
        ) from exc
    except (URLError, OSError, SlackClientError) as exc:
        raise ProviderError(f"Slack {method.replace('_', '.', 1)}: {exc}", retryable=True) from exc
    return dict(resp.data) if isinstance(resp.data, dict) else {"ok": True}


def test(integration: ResolvedIntegration) -> str:
    data = _call(integration, "auth_test")
    return f"connected to {data.get('team') or data.get('team_id')} as {data.get('user')}"


def post_message(
    integration: ResolvedIntegration,
    *,
    channel: str,
    text: str | None,
    blocks: list[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    args: dict[str, Any] = {"channel": channel}
    if text is not None:
        args["text"] = text
    if blocks is not None:
        args["blocks"] = blocks
    if thread_ts:
        args["thread_ts"] = thread_ts
    data = _call(integration, "chat_postMessage", **args)
    return {"ok": True, "channel": data.get("channel"), "ts": data.get("ts")}
