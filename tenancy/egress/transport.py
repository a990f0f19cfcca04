"""HTTP clients whose every connection (redirects too) passes the egress policy and goes to
the address that was checked: the name is resolved once, here, and never again by the
connection (no DNS rebinding). TLS still verifies the certificate against the name."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from tenancy.egress.policy import IPAddress, Policy, policy_from_settings
from tenancy.errors import EgressRefused

_current: tuple[object, Policy] | None = None


def current_policy() -> Policy:
    """This process's policy, rebuilt when the settings are (tests change the environment)."""
    global _current
    from tenancy.config import get_settings

    settings = get_settings()
    if _current is None or _current[0] is not settings:
        _current = (settings, policy_from_settings())
    return _current[1]


def check(host: str, port: int) -> list[IPAddress]:
    """The checked addresses of ``host:port``; raises EgressRefused."""
    return current_policy().check(host, port)


async def acheck(host: str, port: int) -> list[IPAddress]:
    return await asyncio.to_thread(check, host, port)


def _target(request: httpx.Request) -> tuple[str, int]:
    url = request.url
    if url.scheme not in ("http", "https"):
        raise EgressRefused(f"only http and https may be called, not {url.scheme!r}")
    return url.host, url.port or (443 if url.scheme == "https" else 80)


def _pinned(request: httpx.Request, host: str, ip: IPAddress) -> httpx.Request:
    request.url = request.url.copy_with(host=str(ip))
    if request.url.scheme == "https":
        request.extensions = {**request.extensions, "sni_hostname": host}
    return request


Check = Callable[[str, int], list[IPAddress]]


class EgressTransport(httpx.AsyncBaseTransport):
    """``check``: the policy (this process's, ``check``, by default)."""

    def __init__(self, *, check: Check | None = None, **kwargs: Any) -> None:
        self._check = check
        self._inner = httpx.AsyncHTTPTransport(**kwargs)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host, port = _target(request)
        if self._check is None:
            ips = await acheck(host, port)
        else:
            ips = await asyncio.to_thread(self._check, host, port)
        return await self._inner.handle_async_request(_pinned(request, host, ips[0]))

    async def aclose(self) -> None:
        await self._inner.aclose()


class SyncEgressTransport(httpx.BaseTransport):
    def __init__(self, **kwargs: Any) -> None:
        self._inner = httpx.HTTPTransport(**kwargs)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host, port = _target(request)
        ips = check(host, port)
        return self._inner.handle_request(_pinned(request, host, ips[0]))

    def close(self) -> None:
        self._inner.close()


def async_client(*, max_connections: int = 200, **kwargs: Any) -> httpx.AsyncClient:
    """An AsyncClient for tenant-caused requests (no proxy from the environment)."""
    transport = EgressTransport(limits=httpx.Limits(max_connections=max_connections))
    return httpx.AsyncClient(transport=transport, trust_env=False, **kwargs)


def client(**kwargs: Any) -> httpx.Client:
    return httpx.Client(transport=SyncEgressTransport(), trust_env=False, **kwargs)
