"""The orbin command: start the platform or one of its processes; manage organizations, API
keys, users and members (help texts are plain text: what a terminal shows)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import typer

from orbin_cli.choices import listing, one_of
from orbin_cli.errors import fail, transaction
from orbin_cli.people import member_app, user_app
from orbin_cli.secrets import secrets_app
from tenancy.config import get_settings, reset_settings
from tenancy.keys import KEY_TYPES
from tenancy.principal import ALL_PERMISSIONS

HELP = (
    "Orbin: event-driven workflows on Prefect. Start the whole platform with 'orbin up', or "
    "one of its processes; manage organizations, API keys, users and members."
)
app = typer.Typer(no_args_is_help=True, add_completion=False, help=HELP)
org_app = typer.Typer(no_args_is_help=True, help="Organizations: create, list, change the plan.")
key_app = typer.Typer(
    no_args_is_help=True, help="API keys of an organization (shown once, stored hashed)."
)
app.add_typer(org_app, name="org")
app.add_typer(key_app, name="api-key")
app.add_typer(user_app, name="user")
app.add_typer(member_app, name="member")
app.add_typer(secrets_app, name="secrets")


def _setup_logging() -> None:
    """Orbin's own loggers (Prefect configures its own and the root logger)."""
    from telemetry.logs import formatter
    from telemetry.settings import get_telemetry_settings

    handler = logging.StreamHandler()
    handler.setFormatter(formatter(get_telemetry_settings().log_format))
    logger = logging.getLogger("orbin")
    logger.addHandler(handler)
    logger.setLevel(get_settings().log_level)
    logger.propagate = False


EXIT = 2  # the exit code of a refused command


def _fail(message: str) -> NoReturn:
    fail(message, EXIT)


def _plans_help() -> str:
    """The plans in force, named in --plan's help (the built-in ones if the file is bad)."""
    from tenancy.errors import OrbinError
    from tenancy.plans import BUILT_IN, load_plans

    try:
        names = list(load_plans())
    except (OrbinError, OSError):
        names = list(BUILT_IN)
    return "one of: " + ", ".join(names) + " (the plans in force; ORBIN_PLANS_FILE sets them)"


def _check_plans() -> None:
    """A bad ORBIN_PLANS_FILE stops a process at its start, saying what is wrong."""
    from tenancy.errors import OrbinError
    from tenancy.plans import load_plans

    try:
        load_plans()
    except OrbinError as exc:
        _fail(exc.message)


@app.command()
def up() -> None:
    """Start everything: Prefect server (unless PREFECT_API_URL is set), API, worker, dashboard."""
    from orbin_cli.supervisor import run_platform

    raise typer.Exit(run_platform())


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    from tenancy.migrate import upgrade

    upgrade()
    typer.echo("database is up to date", err=True)


@app.command()
def seed() -> None:
    """Create the demo organization if it does not exist; print its login and key once."""
    from orbin_flows.demo import seed_demo
    from tenancy.db import session_scope

    with session_scope() as session:
        result = seed_demo(session)
    if result.created:
        typer.echo(f"demo login: {result.email} / {result.password}", err=True)
        typer.echo(result.api_key or "")
    else:
        typer.echo("the demo organization exists already", err=True)


@app.command()
def api(
    host: str = typer.Option(None, help="default ORBIN_API_HOST"),
    port: int = typer.Option(None, help="default ORBIN_API_PORT"),
    workers: int = typer.Option(None, help="processes (default ORBIN_API_WORKERS)"),
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    _setup_logging()
    _check_plans()
    # The address given here is the API's for the URLs it hands out (unless ORBIN_PUBLIC_URL).
    if host:
        os.environ["ORBIN_API_HOST"] = host
    if port:
        os.environ["ORBIN_API_PORT"] = str(port)
    reset_settings()
    s = get_settings()
    uvicorn.run(
        "ingest_api.app:create_app",
        factory=True,
        host=host or s.api_host,
        port=port or s.api_port,
        workers=workers or s.api_workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(s.api_shutdown_seconds),
    )


@app.command()
def worker(
    concurrency: int = typer.Option(None, help="runs at once (default ORBIN_WORKER_CONCURRENCY)"),
) -> None:
    """Run the warm worker: executes flow runs of every organization's work pool in-process."""
    import signal

    from orbin_flows.runtime.worker import Worker

    _setup_logging()
    _check_plans()

    async def main() -> None:
        w = Worker(concurrency=concurrency)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, w.stop)
        await w.run()

    asyncio.run(main())


@org_app.command("create")
def org_create(
    slug: str = typer.Option(..., help="lowercase letters, digits and dashes"),
    name: str = typer.Option(None, help="the display name (default: the slug)"),
    plan: str = typer.Option("free", help=_plans_help()),
    code_pool_type: str = typer.Option(
        None,
        help="a Prefect work pool of this type (process, kubernetes, ecs) for the "
        "organization's code flows, orbin-<slug>_code, with the plan's concurrency; "
        "deployments rolled out there run on that pool's Prefect workers",
    ),
) -> None:
    """Create an organization and print what was made: slug, plan, work pools, id."""
    from tenancy.db import session_scope
    from tenancy.errors import OrbinError
    from tenancy.orgs import code_pool_name, create_organization, work_pool_name
    from tenancy.plans import require_plan

    try:
        limits = require_plan(plan)
        with session_scope() as session:
            org = create_organization(
                session, name=name or slug, slug=slug, plan=plan, code_pool_type=code_pool_type
            )
            org_id = org.id
    except OrbinError as exc:
        _fail(exc.message)
    typer.echo(f"created organization {slug} ({name or slug})")
    typer.echo(
        f"  plan       {plan}: {limits.monthly_executions:,} executions a month, "
        f"{limits.concurrency} runs at once"
    )
    typer.echo(f"  work pool  {work_pool_name(slug)} (in Prefect, made by its first run)")
    if code_pool_type:
        made = _make_code_pool(slug, code_pool_type, limits.concurrency)
        typer.echo(
            f"  code pool  {code_pool_name(slug)} ({code_pool_type}, "
            f"{limits.concurrency} runs at once; {made})"
        )
    typer.echo(f"  id         {org_id}")


def _make_code_pool(slug: str, pool_type: str, concurrency: int) -> str:
    """Made now when Prefect answers; else by the worker's pool sync when it does."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.prefect_setup import CodePoolError, ensure_code_pool

    async def make() -> None:
        async with get_client() as client:
            await ensure_code_pool(
                client, organization_slug=slug, pool_type=pool_type, concurrency=concurrency
            )

    try:
        with temporary_settings(updates={PREFECT_API_URL: get_settings().prefect_api_url}):
            asyncio.run(make())
    except CodePoolError as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - Prefect not up yet: the worker makes it
        return f"made by the worker once Prefect answers ({exc.__class__.__name__})"
    return "in Prefect"


@org_app.command("list")
def org_list() -> None:
    """List the organizations: slug, plan and name, one a line."""
    from tenancy.db import session_scope
    from tenancy.orgs import read_organizations

    with session_scope() as session:
        for org in read_organizations(session):
            typer.echo(f"{org.slug}\t{org.plan}\t{org.name}")


@org_app.command("set-plan")
def org_set_plan(
    org: str = typer.Option(..., help="organization slug"),
    plan: str = typer.Option(..., help=_plans_help()),
) -> None:
    """Change an organization's plan without Stripe: limits and its Prefect pool follow."""
    from tenancy.billing import set_plan_by_slug

    with transaction(EXIT) as session:
        changed = set_plan_by_slug(session, slug=org, plan=plan)
        typer.echo(f"{changed.slug}\t{changed.plan}")


@key_app.command("create")
def key_create(
    org: str = typer.Option(..., help="organization slug"),
    type: str = typer.Option(
        "secret", callback=one_of(list(KEY_TYPES), "key type"), help=listing(list(KEY_TYPES))
    ),
    name: str = typer.Option(..., help="a label for the key"),
    permission: list[str] = typer.Option(
        None,
        callback=one_of(ALL_PERMISSIONS, "permission"),
        help=f"what a restricted key may do (repeat it), {listing(ALL_PERMISSIONS)}",
    ),
    expires_in_days: int = typer.Option(None, help="days until the key expires"),
) -> None:
    """Create an API key and print it alone on stdout (it is never shown again)."""
    from tenancy.keys import create_api_key
    from tenancy.orgs import read_organization_by_slug

    expires = None
    if expires_in_days:
        expires = int((datetime.now(UTC) + timedelta(days=expires_in_days)).timestamp() * 1000)
    with transaction(EXIT) as session:
        organization = read_organization_by_slug(session, org)
        created = create_api_key(
            session,
            organization_id=organization.id,
            name=name,
            type=type,
            permissions=permission or None,
            expires_at=expires,
        )
    typer.echo(created.plaintext)


@key_app.command("list")
def key_list(org: str = typer.Option(..., help="organization slug")) -> None:
    """List an organization's keys: id, type, masked key, name, state."""
    from tenancy.keys import read_api_keys
    from tenancy.orgs import read_organization_by_slug

    with transaction(EXIT) as session:
        organization = read_organization_by_slug(session, org)
        for k in read_api_keys(session, organization_id=organization.id):
            state = "revoked" if k.revoked_at else "active"
            masked = f"{k.key_prefix}****{k.last_four_chars}"
            typer.echo(f"{k.id}\t{k.type}\t{masked}\t{k.name}\t{state}")


@key_app.command("revoke")
def key_revoke(
    org: str = typer.Option(..., help="organization slug"),
    key_id: str = typer.Argument(..., help="the key's id (see api-key list)"),
) -> None:
    """Revoke a key: it stops working at once."""
    from tenancy.keys import revoke_api_key
    from tenancy.orgs import read_organization_by_slug

    with transaction(EXIT) as session:
        organization = read_organization_by_slug(session, org)
        revoke_api_key(session, organization_id=organization.id, key_id=key_id)
    typer.echo("revoked", err=True)


if __name__ == "__main__":
    sys.exit(app())
