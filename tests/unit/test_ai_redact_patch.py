"""What the model may see (redaction, truncation) and how its spec patches apply."""

from __future__ import annotations

import pytest

from orbin_flows.ai.ask import Invalid, parse_object
from orbin_flows.ai.patch import PatchError, apply_patch
from orbin_flows.ai.redact import REDACTED, Redactor


def test_values_under_secret_looking_keys_are_redacted_at_any_depth() -> None:
    r = Redactor()
    out = r.data(
        {
            "user": {"password": "p", "apiKey": "k", "x-api-key": "k", "client_secret": "c"},
            "headers": [{"Authorization": "Basic abc"}],
            "access_token": "t",
            "name": "Ada",
            "tokens_empty": "",
        }
    )
    assert out["user"] == dict.fromkeys(
        ("password", "apiKey", "x-api-key", "client_secret"), REDACTED
    )
    assert out["headers"][0]["Authorization"] == REDACTED
    assert out["access_token"] == REDACTED
    assert out["name"] == "Ada"


@pytest.mark.parametrize(
    "secret",
    [
        "sk_live_" + "a" * 32,
        "rk_test_" + "b" * 20,
        "sk-proj-" + "c" * 40,
        "ghp_" + "d" * 36,
        "xoxb-1234567890-abcdefghij",
        "AKIAABCDEFGHIJKLMNOP",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop",
    ],
)
def test_secret_looking_strings_are_redacted_wherever_they_are(secret: str) -> None:
    text = Redactor().text(f"the value is {secret} ok")
    assert secret not in text and REDACTED in text and text.endswith(" ok")


def test_known_values_and_url_credentials_are_redacted() -> None:
    r = Redactor(["my-webhook-root-secret", "short"])
    assert "my-webhook-root-secret" not in r.text("sig=my-webhook-root-secret!")
    assert "short" in r.text("short")  # under 6 characters: too common to be a secret
    url = r.text("postgresql://orbin:s3cr3t@db:5432/x")
    assert "s3cr3t" not in url and "db:5432" in url
    assert r.text("Bearer abcdefghijklmnopqrstuvwxyz") == REDACTED


def test_long_values_are_truncated() -> None:
    r = Redactor(max_chars=100)
    assert len(r.text("x" * 1000)) < 140
    assert isinstance(r.bounded({"big": ["y" * 50] * 10}), str)
    assert r.bounded({"small": 1}) == {"small": 1}
    assert len(r.data(list(range(100)))) == 21


def test_patches_apply_to_a_copy() -> None:
    spec = {"steps": [{"id": "a"}, {"id": "b"}], "name": "n"}
    out = apply_patch(
        spec,
        [
            {"op": "add", "path": "/steps/1", "value": {"id": "x"}},
            {"op": "replace", "path": "/name", "value": "m"},
            {"op": "remove", "path": "/steps/0"},
            {"op": "add", "path": "/steps/-", "value": {"id": "z"}},
            {"op": "copy", "from": "/name", "path": "/description"},
            {"op": "test", "path": "/description", "value": "m"},
        ],
    )
    assert out == {
        "steps": [{"id": "x"}, {"id": "b"}, {"id": "z"}],
        "name": "m",
        "description": "m",
    }
    assert spec["name"] == "n" and len(spec["steps"]) == 2


@pytest.mark.parametrize(
    "patch",
    [
        {"op": "add"},
        [{"op": "remove", "path": "/nope"}],
        [{"op": "replace", "path": "/steps/9", "value": 1}],
        [{"op": "jump", "path": "/name"}],
        [{"op": "add", "path": "name", "value": 1}],
        [{"op": "test", "path": "/name", "value": "other"}],
        [{"op": "add", "path": "/name"}],
    ],
)
def test_bad_patches_are_refused(patch) -> None:
    with pytest.raises(PatchError):
        apply_patch({"name": "n", "steps": []}, patch)


def test_answers_must_be_one_json_object() -> None:
    assert parse_object('```json\n{"a": 1}\n```') == {"a": 1}
    for text in ("not json", "[1, 2]", ""):
        with pytest.raises(Invalid):
            parse_object(text)
