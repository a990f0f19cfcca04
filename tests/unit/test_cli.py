"""The `orbin` command as an operator meets it: plain help for every command, organizations
that say what was made, people given access and a demo login recovered without Python, and
unknown values refused with the valid ones before anything is done."""

from __future__ import annotations

import re

import click
import pytest
import typer
from typer.testing import CliRunner

from orbin_cli.main import app
from tenancy.db import session_scope
from tenancy.errors import Unauthenticated
from tenancy.identity.accounts import sign_in
from tenancy.orgs import read_organizations

runner = CliRunner()
RST = re.compile(r"``|:(?:func|class|meth|mod):`|^\.\. ", re.MULTILINE)


def orbin(*args: str) -> click.testing.Result:
    # Wide enough that no message is wrapped inside the boxes Typer draws.
    return runner.invoke(app, list(args), prog_name="orbin", env={"COLUMNS": "250"})


def _commands(group: click.Command, path: tuple[str, ...] = ()):
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_command_has_plain_help_text() -> None:
    root = typer.main.get_command(app)
    seen = []
    for path, command in _commands(root):
        text = (command.help or "").strip()
        assert text, f"orbin {' '.join(path)} has no help text"
        assert not RST.search(text), f"orbin {' '.join(path)}: {text!r}"
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                assert param.help, f"orbin {' '.join(path)} {param.opts[0]} has no help"
        seen.append(" ".join(path))
    assert {"org create", "user create", "user reset-password", "member add"} <= set(seen)
    assert {"member list", "member remove", "api-key revoke"} <= set(seen)
    top = orbin("--help")
    assert top.exit_code == 0 and "``" not in top.output and "orbin up" in top.output


def test_org_create_says_what_it_made_and_lists_the_plans(database) -> None:
    helped = orbin("org", "create", "--help")
    assert all(p in helped.output for p in ("free", "pro", "business", "enterprise"))
    made = orbin("org", "create", "--slug", "acme", "--plan", "pro", "--name", "Acme")
    assert made.exit_code == 0, made.output
    assert "created organization acme" in made.stdout
    assert re.search(r"plan\s+pro: 50,000 executions a month", made.stdout)
    assert re.search(r"work pool\s+orbin-acme", made.stdout)
    bad = orbin("org", "create", "--slug", "gilded", "--plan", "gold")
    assert bad.exit_code != 0
    assert "unknown plan 'gold'; the plans are free, pro, business, enterprise" in bad.output
    with session_scope() as session:
        assert [(o.slug, o.plan) for o in read_organizations(session)] == [("acme", "pro")]
    assert "acme\tpro\tAcme" in orbin("org", "list").stdout


def test_people_get_access_and_a_password_is_reset_once(database) -> None:
    assert orbin("org", "create", "--slug", "acme").exit_code == 0
    bad = orbin("user", "create", "--email", "ada@x.io", "--name", "Ada", "--role", "god")
    assert bad.exit_code != 0 and "one of: viewer, member, admin, owner" in bad.output
    made = orbin(
        "user", "create", "--email", "ada@x.io", "--name", "Ada", "--org", "acme", "--role", "admin"
    )
    assert made.exit_code == 0, made.output
    first = made.stdout.strip().removeprefix("password: ")
    assert "ada@x.io\tadmin\tAda" in orbin("member", "list", "--org", "acme").stdout

    reset = orbin("user", "reset-password", "--email", "ada@x.io")
    assert reset.exit_code == 0 and reset.stdout.count("password: ") == 1
    second = reset.stdout.strip().removeprefix("password: ")
    assert second != first
    token, user = sign_in(email="ada@x.io", password=second)
    assert token and user["email"] == "ada@x.io"
    with pytest.raises(Unauthenticated):
        sign_in(email="ada@x.io", password=first)
    unknown = orbin("user", "reset-password", "--email", "nobody@x.io")
    assert unknown.exit_code != 0 and "no account with e-mail nobody@x.io" in unknown.output

    assert orbin("org", "create", "--slug", "beta").exit_code == 0
    added = orbin("member", "add", "--org", "beta", "--email", "ada@x.io", "--role", "owner")
    assert added.exit_code == 0 and "ada@x.io is now owner of beta" in added.stdout
    again = orbin("member", "add", "--org", "beta", "--email", "ada@x.io")
    assert again.exit_code != 0 and "a member of this organization already" in again.output
    last = orbin("member", "remove", "--org", "beta", "--email", "ada@x.io")
    assert last.exit_code != 0 and "the last owner cannot leave" in last.output
    gone = orbin("member", "remove", "--org", "acme", "--email", "ada@x.io")
    assert gone.exit_code == 0
    assert "ada@x.io" not in orbin("member", "list", "--org", "acme").stdout


def test_api_keys_refuse_unknown_types_and_permissions(database) -> None:
    assert orbin("org", "create", "--slug", "acme").exit_code == 0
    gold = orbin("api-key", "create", "--org", "acme", "--name", "k", "--type", "gold")
    assert gold.exit_code != 0 and "one of: publishable, secret, restricted" in gold.output
    fly = orbin(
        "api-key", "create", "--org", "acme", "--name", "k", "--type", "restricted",
        "--permission", "runs:read", "--permission", "runs:fly",
    )  # fmt: skip
    assert fly.exit_code != 0 and "unknown permission 'runs:fly'" in fly.output
    assert "runs:write" in fly.output
    ok = orbin(
        "api-key", "create", "--org", "acme", "--name", "k", "--type", "restricted",
        "--permission", "runs:read",
    )  # fmt: skip
    assert ok.exit_code == 0 and ok.stdout.strip().startswith("rk_live_")
    listed = orbin("api-key", "list", "--org", "acme")
    assert "\trestricted\trk_live_****" in listed.stdout
    assert orbin("api-key", "list", "--org", "nope").exit_code != 0
