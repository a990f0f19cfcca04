"""Every outbound connection an integration makes goes through here.

Providers' SDKs bring their own HTTP stack (slack_sdk, PyGithub, simple-salesforce, stripe):
``provider_url`` checks the configured URL first (a clear ProviderError), then the SDK is given
``proxied()``'s URL as its only proxy: the process's loopback ``EgressProxy``, which checks every
connection the SDK opens (redirects too) and connects to the address it checked, so a name
resolved again by the SDK cannot send it elsewhere (no DNS rebinding). ``async_client`` (plain
HTTP: webhooks) connects to the checked address as well; ``check_request`` is a hook for clients
built elsewhere (Authlib's, to the operator's OAuth endpoints). All apply the platform's egress
rules (``tenancy.egress``: one classification of internal addresses, one parser of
``ORBIN_EGRESS_ALLOW`` / ``ORBIN_EGRESS_DENY``): a destination on loopback, a private network
or a link-local address is refused unless the allow list names it (``host[:port[-port]]``,
e.g. ``127.0.0.1:18990-18999``), so a tenant's integration cannot reach Orbin's own services.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import requests

from orbin_flows.integrations.errors import ProviderError
from tenancy.egress import EgressRefused, Policy, current_policy, parse_rules
from tenancy.egress.policy import IPAddress
from tenancy.egress.proxy import LoopbackProxy
from tenancy.egress.transport import EgressTransport

__all__ = [
    "EgressRefused",
    "async_client",
    "check_request",
    "check_url",
    "ca_bundle",
    "provider_url",
    "proxied",
    "requests_session",
]


def _policy() -> Policy:
    # The rules are read per call (an operator's setting that tests change as they go); Orbin's
    # own service ports (its database, Redis, API, dashboard, Prefect) stay refused on internal
    # addresses unless a rule names the exact port, as for every other egress.
    return Policy(
        parse_rules(os.environ.get("ORBIN_EGRESS_ALLOW")),
        parse_rules(os.environ.get("ORBIN_EGRESS_DENY")),
        service_ports=current_policy().service_ports,
    )


def _check(host: str, port: int) -> list[IPAddress]:
    return _policy().check(host, port)


_proxy = LoopbackProxy(_check)


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


@contextlib.contextmanager
def proxied() -> Iterator[str]:
    """The proxy URL (http and https) for one SDK call made inside the block. A connection the
    proxy refused fails the block with the policy's reason, a ProviderError that is not
    retried, whatever the SDK made of the proxy's 403."""
    ticket = _proxy.tickets.issue()
    refusal: str | None = None
    try:
        try:
            yield _proxy.url(ticket)
        finally:
            refusal = _proxy.tickets.close(ticket)
    except Exception as exc:
        if refusal is not None:
            raise ProviderError(refusal) from exc
        raise
    if refusal is not None:
        raise ProviderError(refusal)


def ca_bundle() -> str | bool:
    """What requests would verify TLS with from the environment (its CA bundle variables)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def requests_session(proxy: str) -> requests.Session:
    """A requests Session whose every request goes through ``proxy``: ``trust_env`` off, so
    ``HTTPS_PROXY`` / ``NO_PROXY`` cannot route around it (the CA bundle variables still count)."""
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"http": proxy, "https": proxy}
    session.verify = ca_bundle()
    return session


async def check_request(request: httpx.Request) -> None:
    """An httpx request hook: the same rule for clients built elsewhere (Authlib's)."""
    await asyncio.to_thread(check_url, str(request.url))


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def async_client() -> httpx.AsyncClient:
    """The event loop's shared httpx client (building one costs ~100 ms: its TLS context),
    whose every request (redirects included) passes ``check_url`` and goes to the checked
    address. Pass ``timeout`` per call."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            timeout=30.0,
            follow_redirects=False,
            transport=EgressTransport(check=_check, limits=httpx.Limits(max_connections=100)),
            trust_env=False,
            event_hooks={"request": [check_request]},
        )
        _clients[loop] = client
    return client
