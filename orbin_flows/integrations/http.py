"""Every outbound connection an integration makes goes through here.

Two entry points: ``check_url`` (for providers' SDKs that bring their own HTTP stack: slack_sdk,
PyGithub; ``provider_url`` is its ProviderError form) and ``async_client`` (for plain HTTP:
webhooks). Both apply the platform's egress rules (``tenancy.egress``: one classification of
internal addresses, one parser of ``ORBIN_EGRESS_ALLOW`` / ``ORBIN_EGRESS_DENY``): a destination
on loopback, a private network or a link-local address is refused unless the allow list names
it (``host[:port[-port]]``, e.g. ``127.0.0.1:18990-18999``), so a tenant's integration cannot
reach Orbin's own services.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from urllib.parse import urlsplit

import httpx

from orbin_flows.integrations.errors import ProviderError
from tenancy.egress import EgressRefused, Policy, parse_rules

__all__ = ["EgressRefused", "async_client", "check_request", "check_url", "provider_url"]


def _policy() -> Policy:
    # Read per call: the allow list is an operator's setting that tests change as they go.
    return Policy(
        parse_rules(os.environ.get("ORBIN_EGRESS_ALLOW")),
        parse_rules(os.environ.get("ORBIN_EGRESS_DENY")),
        service_ports=frozenset(),
    )


def check_url(url: str) -> None:
    """Raise EgressRefused unless ``url`` may be called now."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise EgressRefused(f"not a valid URL: {url!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressRefused(f"not an http(s) URL: {url!r}")
    _policy().check(parts.hostname, port)


def provider_url(url: str) -> str:
    """``url``, once ``check_url`` lets a provider's SDK call it; refused: a ProviderError."""
    try:
        check_url(url)
    except EgressRefused as exc:
        raise ProviderError(str(exc)) from exc
    return url


async def check_request(request: httpx.Request) -> None:
    """An httpx request hook: the same rule for clients built elsewhere (Authlib's)."""
    await asyncio.to_thread(check_url, str(request.url))


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def async_client() -> httpx.AsyncClient:
    """The event loop's shared httpx client (building one costs ~100 ms: its TLS context),
    whose every request (redirects included) passes ``check_url``. Pass ``timeout`` per call."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            timeout=30.0,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=100),
            event_hooks={"request": [check_request]},
        )
        _clients[loop] = client
    return client
