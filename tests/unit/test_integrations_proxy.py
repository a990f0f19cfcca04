"""The providers' SDKs (slack_sdk, PyGithub, simple-salesforce, stripe) connect only through
the process's egress proxy, to the address the policy checked: a name that resolves to an
allowed address when checked and to a forbidden one when the SDK would connect (DNS
rebinding) never reaches the forbidden one, whatever HTTPS_PROXY / NO_PROXY say. Webhooks
(httpx, the pinned transport) likewise."""

from __future__ import annotations

import base64
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from orbin_flows.integrations import github, http, salesforce, slack, stripe, webhook
from orbin_flows.integrations.errors import ProviderError
from tenancy.egress import policy as egress_policy
from tenancy.integrations import ResolvedIntegration
from tests.support.providers import GITHUB_TOKEN, SLACK_TOKEN, STRIPE_KEY, Providers
from tests.support.salesforce import SALESFORCE_TOKEN, SalesforceServer

CHECKED = "127.0.0.2"  # what the policy's lookup of *.rebind.test answers (allowed)
FORBIDDEN = "127.0.0.1"  # what everyone else's lookup answers (not allowed)


class Tripwire:
    """A listener on the forbidden address: counts every connection that reaches it."""

    def __init__(self) -> None:
        self.sock = socket.create_server((FORBIDDEN, 0))
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


# (provider, config for a base URL, credentials, the connection test, what it answers)
SDKS: dict[str, tuple[Callable[[str], dict[str, Any]], dict[str, str], Any, str]] = {
    "slack": (
        lambda base: {"baseUrl": f"http://{base}/slack/api/"},
        {"botToken": SLACK_TOKEN},
        slack.test,
        "connected to Test Team as orbin",
    ),
    "github": (
        lambda base: {"baseUrl": f"http://{base}/github/api/v3"},
        {"token": GITHUB_TOKEN},
        github.test,
        "authenticated as octocat",
    ),
    "stripe": (
        lambda base: {"apiBase": f"http://{base}/stripe"},
        {"secretKey": STRIPE_KEY},
        stripe.test,
        "balance available: 1200 usd",
    ),
    "salesforce": (
        lambda base: {"instanceUrl": f"https://{base}"},
        {"accessToken": SALESFORCE_TOKEN},
        salesforce.test,
        "API requests remaining today: 14998",
    ),
}


def _integration(provider: str, base: str) -> ResolvedIntegration:
    config, credentials, _, _ = SDKS[provider]
    return ResolvedIntegration(
        id="i1",
        organization_id="o1",
        provider=provider,
        name=provider,
        status="active",
        config=config(base),
        credentials=credentials,
    )


@pytest.fixture
def wire() -> Iterator[Tripwire]:
    t = Tripwire()
    yield t
    t.close()


@pytest.fixture
def provider_at_checked(request, wire: Tripwire, monkeypatch) -> Iterator[tuple[str, Any]]:
    """The provider's stand-in on CHECKED:port (allowed), the tripwire on FORBIDDEN:port."""
    provider = request.param
    if provider == "salesforce":
        server: Any = SalesforceServer(CHECKED, wire.port, names=(f"{provider}.rebind.test",))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_file)
    else:
        server = Providers(CHECKED, wire.port)
    monkeypatch.setenv("ORBIN_EGRESS_ALLOW", f"{CHECKED}:{wire.port}")
    # The environment's proxy settings must not route around the egress proxy.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "*")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    yield provider, server
    server.close()


def _rebinding(monkeypatch, checked: Callable[[], str]) -> list[str]:
    """The policy's lookup of *.rebind.test answers ``checked()``; any other lookup (the
    SDK's own, were it to connect by itself) answers FORBIDDEN. Returns the policy's answers."""
    real_resolve, real_getaddrinfo = egress_policy.resolve, socket.getaddrinfo
    answers: list[str] = []

    def resolve(host: str, port: int) -> list[egress_policy.IPAddress]:
        if host.endswith(".rebind.test"):
            answers.append(checked())
            return [ipaddress.ip_address(answers[-1])]
        return real_resolve(host, port)

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".rebind.test"):
            host = FORBIDDEN
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(egress_policy, "resolve", resolve)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


PROVIDERS = list(SDKS)


@pytest.mark.parametrize("provider_at_checked", PROVIDERS, indirect=True)
def test_the_sdk_reaches_the_checked_address_only(provider_at_checked, wire, monkeypatch) -> None:
    provider, server = provider_at_checked
    answers = _rebinding(monkeypatch, lambda: CHECKED)
    integration = _integration(provider, f"{provider}.rebind.test:{wire.port}")
    assert SDKS[provider][2](integration) == SDKS[provider][3]
    assert len(server.calls) >= 1  # reached on CHECKED: only the proxy connects there
    assert wire.hits == 0
    assert len(answers) >= 2  # the pre-check, then the proxy's own check of the connection


@pytest.mark.parametrize("provider_at_checked", PROVIDERS, indirect=True)
def test_a_name_rebound_after_the_pre_check_is_refused_with_the_policys_reason(
    provider_at_checked, wire, monkeypatch
) -> None:
    provider, server = provider_at_checked
    answers: list[str] = []
    answers = _rebinding(monkeypatch, lambda: CHECKED if not answers else FORBIDDEN)
    integration = _integration(provider, f"{provider}.rebind.test:{wire.port}")
    with pytest.raises(ProviderError) as caught:
        SDKS[provider][2](integration)
    assert caught.value.message == (
        f"egress to {provider}.rebind.test ({FORBIDDEN}):{wire.port} refused: an internal address"
    )
    assert not caught.value.retryable
    assert wire.hits == 0 and len(server.calls) == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refused_host_fails_with_a_clear_error(provider, wire, monkeypatch) -> None:
    monkeypatch.delenv("ORBIN_EGRESS_ALLOW", raising=False)
    integration = _integration(provider, f"{FORBIDDEN}:{wire.port}")
    with pytest.raises(ProviderError) as caught:
        SDKS[provider][2](integration)
    assert caught.value.message == (
        f"egress to {FORBIDDEN}:{wire.port} refused: an internal address"
    )
    assert wire.hits == 0


@pytest.mark.parametrize("provider_at_checked", ["webhook"], indirect=True)
async def test_a_webhook_goes_to_the_checked_address_only(
    provider_at_checked, wire, monkeypatch
) -> None:
    _, server = provider_at_checked
    _rebinding(monkeypatch, lambda: CHECKED)
    integration = ResolvedIntegration(
        id="i1",
        organization_id="o1",
        provider="webhook",
        name="hook",
        status="active",
        config={"url": f"http://hook.rebind.test:{wire.port}/hook"},
        credentials={"signingSecret": "whsec-test"},
    )
    out = await webhook.send(integration, {"ping": True})
    assert out == {"status": 200, "body": {"received": True}}
    assert len(server.calls_to("/hook")) == 1 and wire.hits == 0


def _ask(port: int, head: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(head.encode())
        return s.recv(4096).decode(errors="replace").split("\r\n", 1)[0]


def test_the_proxy_serves_live_tickets_only(wire, monkeypatch) -> None:
    """Nothing else on the host can use the process's proxy: it wants a ticket of a call
    under way, and forgets it when the call ends."""
    monkeypatch.setenv("ORBIN_EGRESS_ALLOW", f"{FORBIDDEN}:{wire.port}")
    target = f"CONNECT {FORBIDDEN}:{wire.port} HTTP/1.1\r\n"
    with http.proxied() as url:
        parts = urlsplit(url)
        port = parts.port
        assert port is not None
        good = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
        bad = base64.b64encode(f"{parts.username}:guessed".encode()).decode()
        assert _ask(port, target + "\r\n").startswith("HTTP/1.1 407")
        assert _ask(port, f"{target}proxy-authorization: Basic {bad}\r\n\r\n").startswith(
            "HTTP/1.1 407"
        )
        assert _ask(port, f"{target}proxy-authorization: Basic {good}\r\n\r\n").startswith(
            "HTTP/1.1 200"
        )
    assert _ask(port, f"{target}proxy-authorization: Basic {good}\r\n\r\n").startswith(
        "HTTP/1.1 407"
    )
    deadline = time.monotonic() + 5
    while wire.hits < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert wire.hits == 1  # the one tunnel with a live ticket
