"""The integrations' outbound rule: internal destinations refused unless ORBIN_EGRESS_ALLOW
lists them (host, port, port range); public ones allowed."""

from __future__ import annotations

import pytest

from orbin_flows.integrations.http import EgressRefused, check_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4200/api",
        "http://localhost:5432/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8000/",
        "http://0.0.0.0:80/",
    ],
)
def test_internal_destinations_are_refused_by_default(url, monkeypatch) -> None:
    monkeypatch.delenv("ORBIN_EGRESS_ALLOW", raising=False)
    with pytest.raises(EgressRefused, match="an internal address|one of Orbin's own services"):
        check_url(url)


def test_a_wide_allow_still_refuses_orbins_own_services(monkeypatch) -> None:
    """ORBIN_EGRESS_ALLOW=127.0.0.1 opens the stand-ins on that host, not Orbin's database,
    Redis or API there; a rule naming the exact port does."""
    from tenancy import config

    monkeypatch.setenv("ORBIN_EGRESS_ALLOW", "127.0.0.1")
    monkeypatch.setenv("ORBIN_API_PORT", "18123")
    config.reset_settings()
    try:
        check_url("http://127.0.0.1:18996/slack/api/")
        for port in (5432, 6379, 18123):
            with pytest.raises(EgressRefused, match="one of Orbin's own services"):
                check_url(f"http://127.0.0.1:{port}/")
        monkeypatch.setenv("ORBIN_EGRESS_ALLOW", "127.0.0.1, 127.0.0.1:6379")
        check_url("http://127.0.0.1:6379/")
    finally:
        monkeypatch.undo()
        config.reset_settings()


def test_the_allow_list_opens_exactly_its_hosts_and_ports(monkeypatch) -> None:
    monkeypatch.setenv("ORBIN_EGRESS_ALLOW", "127.0.0.1:18990-18999, 10.0.0.5, [::1]:9000")
    check_url("http://127.0.0.1:18996/slack/api/")
    check_url("http://10.0.0.5:1234/")
    check_url("http://[::1]:9000/")
    for refused in ("http://127.0.0.1:18989/", "http://127.0.0.1:4200/", "http://[::1]:9001/"):
        with pytest.raises(EgressRefused):
            check_url(refused)


def test_public_addresses_and_bad_urls(monkeypatch) -> None:
    monkeypatch.delenv("ORBIN_EGRESS_ALLOW", raising=False)
    check_url("https://93.184.216.34/")  # a public address literal: no DNS needed
    for bad in ("ftp://example.com/", "http:///nohost", "not a url"):
        with pytest.raises(EgressRefused):
            check_url(bad)
