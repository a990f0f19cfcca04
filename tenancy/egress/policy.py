"""The egress policy: may a tenant-caused connection go to ``host:port``?

Every name is resolved once and every address it resolves to is checked in canonical form
(IPv4-mapped, NAT64, 6to4 and Teredo IPv6 unwrapped; decimal, octal and hex IPv4 forms are
what the resolver makes of them). Refused by default: unspecified, loopback, private,
link-local (incl. the cloud metadata address), CGNAT, multicast, reserved, this host's own
addresses; and Orbin's own service ports on those unless an exact ``host:port`` is allowed.
``ORBIN_EGRESS_ALLOW`` widens it, ``ORBIN_EGRESS_DENY`` narrows it (deny wins): comma-separated
``host``, ``host:port``, ``host:lo-hi``, ``CIDR`` or ``CIDR:port`` (IPv6 as ``[addr]:port``).
The caller connects to the checked address only (no second lookup, so no DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from tenancy.errors import EgressRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Ranges ``is_global`` lets through but no tenant should reach.
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "169.254.0.0/16",  # link-local, metadata
        "192.0.0.0/24",
        "198.18.0.0/15",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",
        "255.255.255.255/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
        "::/128",
        "::1/128",
    )
)
_DEFAULT_SERVICE_PORTS = (5432, 6379)


def canonical(address: str | IPAddress) -> IPAddress:
    """The address a connection really reaches: embedded IPv4 addresses unwrapped."""
    ip = ipaddress.ip_address(address.split("%")[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if any(ip in n for n in _NAT64):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
        # ::a.b.c.d (IPv4-compatible, deprecated but still routed by some stacks)
        if int(ip) >> 32 == 0 and int(ip) > 1:
            return ipaddress.IPv4Address(int(ip))
    return ip


def is_internal(ip: IPAddress) -> bool:
    ip = canonical(ip)
    if any(ip in n for n in _EXTRA_BLOCKED if n.version == ip.version):
        return True
    if ip in _local_addresses():
        return True
    return not ip.is_global or ip.is_multicast or ip.is_reserved


@lru_cache(maxsize=1)
def _local_addresses() -> frozenset[IPAddress]:
    """This host's own addresses (its interfaces and its name)."""
    found: set[IPAddress] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(canonical(str(info[4][0])))
    except OSError:
        pass
    try:  # IPv4 LOCAL routes: every interface address
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
        for prev, line in zip(lines, lines[1:], strict=False):
            if "/32 host LOCAL" in line:
                found.add(ipaddress.IPv4Address(prev.split()[-1]))
    except (OSError, ValueError):
        pass
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.add(canonical(":".join(raw[i : i + 4] for i in range(0, 32, 4))))
    except (OSError, ValueError, IndexError):
        pass
    return frozenset(found)


@dataclass(frozen=True)
class Rule:
    host: str | None  # a lower-case name, or None for an address rule
    network: Network | None
    ports: tuple[int, int] | None  # inclusive range; None: any port

    def matches(self, host: str, ip: IPAddress, port: int) -> bool:
        if self.ports is not None and not self.ports[0] <= port <= self.ports[1]:
            return False
        if self.network is not None:
            return ip.version == self.network.version and ip in self.network
        assert self.host is not None
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    @property
    def exact_port(self) -> bool:
        return self.ports is not None and self.ports[0] == self.ports[1]


def _ports(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    a, b = int(lo), int(hi or lo)
    if not (0 < a <= b < 65536):
        raise ValueError(f"bad port range {text!r}")
    return a, b


def parse_rule(text: str) -> Rule:
    """``host``, ``host:port``, ``host:lo-hi``, ``CIDR``, ``CIDR:port``, ``[v6]:port``."""
    text = text.strip().lower()
    if not text:
        raise ValueError("empty egress rule")
    host, ports = text, None
    if text.startswith("["):
        inner, _, rest = text[1:].partition("]")
        host = inner
        if rest.startswith(":"):
            ports = _ports(rest[1:])
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        ports = _ports(port_text)
    try:
        net = ipaddress.ip_network(host, strict=False)
    except ValueError:
        try:  # legacy IPv4 forms (2130706433, 0x7f.1, 0177.0.0.1) name the same address
            net = ipaddress.ip_network(socket.inet_ntoa(socket.inet_aton(host)))
        except OSError:
            net = None
    if net is not None:
        if isinstance(net, ipaddress.IPv6Network) and net.prefixlen == 128:
            net = ipaddress.ip_network(canonical(net.network_address))
        return Rule(None, net, ports)
    if not host or any(c in host for c in "/ @"):
        raise ValueError(f"bad egress rule {text!r}")
    return Rule(host.rstrip("."), None, ports)


def parse_rules(text: str | None) -> tuple[Rule, ...]:
    return tuple(parse_rule(part) for part in (text or "").split(",") if part.strip())


@dataclass(frozen=True)
class Policy:
    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    service_ports: frozenset[int] = frozenset(_DEFAULT_SERVICE_PORTS)

    def decide(self, host: str, ip: IPAddress, port: int) -> str | None:
        """None when ``ip:port`` (reached as ``host``) may be connected to; else the reason."""
        host = host.lower().rstrip(".")
        ip = canonical(ip)
        if any(r.matches(host, ip, port) for r in self.deny):
            return "denied by ORBIN_EGRESS_DENY"
        allowed = [r for r in self.allow if r.matches(host, ip, port)]
        internal = is_internal(ip)
        if internal and port in self.service_ports:
            if any(r.exact_port for r in allowed):
                return None
            return "one of Orbin's own services"
        if allowed or not internal:
            return None
        return "an internal address"

    def check(self, host: str, port: int) -> list[IPAddress]:
        """The addresses ``host`` resolves to, all checked; raises EgressRefused."""
        host = (host or "").strip("[]")
        if not host:
            raise EgressRefused("no host to connect to")
        addresses = resolve(host, port)
        for ip in addresses:
            reason = self.decide(host, ip, port)
            if reason is not None:
                shown = host if str(ip) == host else f"{host} ({ip})"
                raise EgressRefused(f"egress to {shown}:{port} refused: {reason}")
        return addresses


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of ``host``, canonical, in resolver order, without duplicates."""
    try:
        return [canonical(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise EgressRefused(f"cannot resolve {host!r}: {exc}") from exc
    out: list[IPAddress] = []
    for info in infos:
        ip = canonical(str(info[4][0]))
        if ip not in out:
            out.append(ip)
    if not out:
        raise EgressRefused(f"{host!r} has no address")
    return out


def _url_port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


def policy_from_settings() -> Policy:
    """The policy of this process: ORBIN_EGRESS_ALLOW/DENY and Orbin's own ports."""
    from tenancy.config import get_settings

    s = get_settings()
    ports = {*_DEFAULT_SERVICE_PORTS, s.api_port, s.dashboard_port, s.prefect_port}
    for url in (s.prefect_api_url, s.database_url, s.prefect_database_url, s.redis_url):
        port = _url_port(url) if url else None
        if port:
            ports.add(port)
    return Policy(parse_rules(s.egress_allow), parse_rules(s.egress_deny), frozenset(ports))
