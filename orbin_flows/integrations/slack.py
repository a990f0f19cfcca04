"""Slack through its own SDK (``slack_sdk.WebClient``), against ``baseUrl`` when set.

Calls are synchronous (the SDK's urllib client); steps run them in a thread. Every request
goes through the egress proxy (``http.proxied``).
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.error import URLError
from urllib.parse import unquote, urlsplit
from urllib.request import HTTPSHandler, ProxyHandler, Request, build_opener

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError

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


class _ProxyOnly(ProxyHandler):
    """urllib's ProxyHandler without its ``NO_PROXY`` exemption: every host goes through."""

    def __init__(self, proxy: str) -> None:
        super().__init__({"http": proxy, "https": proxy})

    def proxy_open(self, req: Request, proxy: str, type: str) -> None:
        parts = urlsplit(proxy)
        if parts.username is not None and parts.password is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password)}".encode()
            req.add_header("Proxy-authorization", "Basic " + base64.b64encode(pair).decode())
        req.set_proxy(f"{parts.hostname}:{parts.port}", "http")
        return None  # the http/https handlers go on, to the proxy (CONNECT for https)


class ProxiedWebClient(WebClient):
    """slack_sdk's WebClient whose requests all go through ``proxy`` (its own opener lets
    ``NO_PROXY`` send a host around the proxy; this one never does)."""

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if not url.lower().startswith(("http://", "https://")) or not self.proxy:
            raise SlackRequestError(f"Invalid URL detected: {url}")
        opener = build_opener(_ProxyOnly(self.proxy), HTTPSHandler(context=self.ssl))
        resp = opener.open(req, timeout=self.timeout)
        if resp.headers.get_content_type() == "application/gzip":
            return {"status": resp.code, "headers": resp.headers, "body": resp.read()}
        charset = resp.headers.get_content_charset() or "utf-8"
        return {"status": resp.code, "headers": resp.headers, "body": resp.read().decode(charset)}


def client(integration: ResolvedIntegration, proxy: str, timeout: int = 30) -> WebClient:
    url = http.provider_url(base_url(integration.config))
    return ProxiedWebClient(
        token=integration.credentials["botToken"], base_url=url, timeout=timeout, proxy=proxy
    )


def _call(integration: ResolvedIntegration, method: str, **kwargs: Any) -> dict[str, Any]:
    """``method`` is the SDK's method name (``auth_test``, ``chat_postMessage``)."""
    try:
        with http.proxied() as proxy:
            resp = getattr(client(integration, proxy), method)(**kwargs)
    except SlackApiError as exc:
        status = exc.response.status_code
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(data.get("error") or f"HTTP {status}")
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
