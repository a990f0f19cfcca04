"""The Prefect server's auth string: generated once, 0600, stable; the operator's wins."""

from __future__ import annotations

import base64
import stat

import pytest

from tenancy import config, prefect_auth


@pytest.fixture
def home(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ORBIN_HOME", str(tmp_path))
    monkeypatch.delenv("PREFECT_SERVER_API_AUTH_STRING", raising=False)
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    config.reset_settings()
    yield tmp_path
    config.reset_settings()


def test_generated_once_private_and_stable(home) -> None:
    assert prefect_auth.current() is None and prefect_auth.headers() == {}
    value, created = prefect_auth.ensure()
    assert created and value.startswith("orbin:") and len(value) > 30
    f = home / "prefect-auth-string"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert prefect_auth.ensure() == (value, False)
    assert prefect_auth.current() == value
    token = prefect_auth.headers()["authorization"].removeprefix("Basic ")
    assert base64.b64decode(token).decode() == value


def test_the_operators_string_wins(home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", "ops:pw")
    assert prefect_auth.ensure() == ("ops:pw", False)
    assert not (home / "prefect-auth-string").exists()


def test_a_process_started_on_its_own_presents_the_file(home, monkeypatch) -> None:
    import os

    value, _ = prefect_auth.ensure()
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "")  # restored to unset afterwards
    prefect_auth.export_to_environment()

    assert os.environ["PREFECT_API_AUTH_STRING"] == value
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "mine:pw")
    prefect_auth.export_to_environment()
    assert os.environ["PREFECT_API_AUTH_STRING"] == "mine:pw"
