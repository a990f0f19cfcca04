"""The egress policy: every address form of an internal target refused, allow/deny rules,
Orbin's own ports, one lookup per connection (no rebinding), redirects re-checked."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tenancy import egress
from tenancy.egress import policy as egress_policy
from tenancy.egress import transport as egress_client
from tenancy.egress.policy import Policy, canonical, parse_rule, parse_rules

DEFAULT = Policy(service_ports=frozenset({5432, 6379, 8000, 8501, 4200}))


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1.2.3",
        "localhost",
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
        "[::ffff:127.0.0.1]",
        "64:ff9b::7f00:1",  # NAT64
        "2002:7f00:1::",  # 6to4
        "::127.0.0.1",  # IPv4-compatible
        "2130706433",  # decimal
        "0x7f000001",  # hex
        "0177.0.0.1",  # octal
        "0x7f.1",
        "0.0.0.0",
        "0",
        "::",
        "::1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "::ffff:169.254.169.254",
        "fe80::1",
        "fd00::1",
        "100.64.0.1",  # CGNAT
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
        "198.18.0.1",
    ],
)
def test_internal_forms_are_refused(host: str) -> None:
    with pytest.raises(egress.EgressRefused):
        DEFAULT.check(host, 80)


def test_this_hosts_own_addresses_are_internal() -> None:
    for ip in egress_policy._local_addresses():
        assert egress.is_internal(ip), ip


def test_public_addresses_pass() -> None:
    assert DEFAULT.check("93.184.216.34", 443) == [ipaddress.ip_address("93.184.216.34")]
    assert DEFAULT.check("2606:4700::1111", 443)


def test_canonical_unwraps_embedded_ipv4() -> None:
    assert str(canonical("::ffff:10.0.0.1")) == "10.0.0.1"
    assert str(canonical("64:ff9b::a00:1")) == "10.0.0.1"
    assert str(canonical("2001:db8::1")) == "2001:db8::1"


def test_allow_widens_by_port_range_and_deny_narrows() -> None:
    p = Policy(parse_rules("127.0.0.1:18990-18999, 10.0.0.0/8"), parse_rules("10.9.0.0/16"))
    assert p.check("127.0.0.1", 18995)
    assert p.check("::ffff:127.0.0.1", 18990)  # the same address, written otherwise
    with pytest.raises(egress.EgressRefused):
        p.check("127.0.0.1", 19000)
    assert p.check("10.1.1.1", 443)
    with pytest.raises(egress.EgressRefused, match="DENY"):
        p.check("10.9.1.1", 443)
    denied = Policy(deny=parse_rules("93.184.216.0/24,evil.example"))
    with pytest.raises(egress.EgressRefused):
        denied.check("93.184.216.34", 443)


def test_orbins_own_ports_need_an_exact_allow() -> None:
    wide = Policy(parse_rules("127.0.0.0/8"), service_ports=frozenset({5432, 4200}))
    assert wide.check("127.0.0.1", 18000)
    for port in (5432, 4200):
        with pytest.raises(egress.EgressRefused, match="own services"):
            wide.check("127.0.0.1", port)
    ranged = Policy(parse_rules("127.0.0.1:4000-5000"), service_ports=frozenset({4200}))
    with pytest.raises(egress.EgressRefused):
        ranged.check("127.0.0.1", 4200)
    exact = Policy(parse_rules("127.0.0.1:4200"), service_ports=frozenset({4200}))
    assert exact.check("127.0.0.1", 4200)


def test_a_name_with_one_internal_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(host, port, *a, **k):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(egress_policy.socket, "getaddrinfo", fake)
    with pytest.raises(egress.EgressRefused, match="10.0.0.5"):
        DEFAULT.check("mixed.example", 443)


def test_host_rules() -> None:
    r = parse_rule("*.corp.example:443")
    assert r.matches("api.corp.example", ipaddress.ip_address("10.0.0.1"), 443)
    assert not r.matches("corp.example.evil", ipaddress.ip_address("10.0.0.1"), 443)
    assert parse_rule("[::1]:80").network == ipaddress.ip_network("::1/128")
    assert parse_rule("2130706433").network == ipaddress.ip_network("127.0.0.1/32")
    for bad in ("", "a b", "host:0", "host:9-1", "http://x/y"):
        with pytest.raises(ValueError):
            parse_rule(bad) if bad else parse_rule(" ")


class _Redirector(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        if self.path == "/ok":
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(302)
        self.send_header("location", self.target)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    srv = ThreadingHTTPServer(("127.0.0.2", 0), _Redirector)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    monkeypatch.setattr(
        egress_client,
        "current_policy",
        lambda: Policy(parse_rules(f"127.0.0.2:{port}"), service_ports=frozenset({5432})),
    )
    yield port
    srv.shutdown()


async def test_the_client_reaches_an_allowed_target_and_rechecks_redirects(server: int) -> None:
    async with egress.async_client(follow_redirects=True) as c:
        assert (await c.get(f"http://127.0.0.2:{server}/ok")).json() == {"ok": True}
        _Redirector.target = f"http://127.0.0.2:{server}/ok"
        assert (await c.get(f"http://127.0.0.2:{server}/hop")).status_code == 200
        _Redirector.target = "http://127.0.0.1:5432/"
        with pytest.raises(egress.EgressRefused):
            await c.get(f"http://127.0.0.2:{server}/hop")
    with egress.client() as c:
        assert c.get(f"http://127.0.0.2:{server}/ok").status_code == 200
        with pytest.raises(egress.EgressRefused):
            c.get("http://[::ffff:127.0.0.1]:5432/")


async def test_the_connection_goes_to_the_checked_address(
    server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolves to an allowed address once, then to an internal one (rebinding):
    the client resolves once, checks, and connects to what it checked."""
    answers = iter(["127.0.0.2", "127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host, port, *a, **k):
        if host == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, port, *a, **k)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    async with egress.async_client() as c:
        r = await c.get(f"http://rebind.test:{server}/ok")
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert next(answers) == "127.0.0.1"  # one lookup only
