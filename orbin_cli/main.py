"""``orbin``: start the platform or one of its processes; manage organizations and keys."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime, timedelta

import typer

from tenancy.config import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
org_app = typer.Typer(no_args_is_help=True, help="Organizations.")
key_app = typer.Typer(no_args_is_help=True, help="API keys (shown once, stored hashed).")
app.add_typer(org_app, name="org")
app.add_typer(key_app, name="api-key")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


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

    s = get_settings()
    uvicorn.run(
        "ingest_api.app:create_app",
        factory=True,
        host=host or s.api_host,
        port=port or s.api_port,
        workers=workers or s.api_workers,
        log_level="warning",
        access_log=False,
    )


@app.command()
def worker(
    concurrency: int = typer.Option(None, help="runs at once (default ORBIN_WORKER_CONCURRENCY)"),
) -> None:
    """Run the warm worker: executes flow runs of every organization's work pool in-process."""
    import signal

    from orbin_flows.worker import Worker

    # Prefect configures the root logger on import; Orbin's own loggers get their handler.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    orbin_log = logging.getLogger("orbin")
    orbin_log.addHandler(handler)
    orbin_log.setLevel(get_settings().log_level)
    orbin_log.propagate = False

    async def main() -> None:
        w = Worker(concurrency=concurrency)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, w.stop)
        await w.run()

    asyncio.run(main())


@org_app.command("create")
def org_create(
    slug: str = typer.Option(..., help="lowercase letters, digits, dashes"),
    name: str = typer.Option(None),
    plan: str = typer.Option("free"),
) -> None:
    """Create an organization (it gets its own Prefect work pool on first run)."""
    from tenancy.db import session_scope
    from tenancy.errors import OrbinError
    from tenancy.orgs import create_organization

    try:
        with session_scope() as session:
            org = create_organization(session, name=name or slug, slug=slug, plan=plan)
            typer.echo(org.id)
    except OrbinError as exc:
        _fail(exc.message)


@org_app.command("list")
def org_list() -> None:
    from tenancy.db import session_scope
    from tenancy.orgs import read_organizations

    with session_scope() as session:
        for org in read_organizations(session):
            typer.echo(f"{org.slug}\t{org.plan}\t{org.name}")


@key_app.command("create")
def key_create(
    org: str = typer.Option(..., help="organization slug"),
    type: str = typer.Option("secret", help="secret | publishable | restricted"),
    name: str = typer.Option(..., help="a label for the key"),
    permission: list[str] = typer.Option(None, help="for restricted keys; repeat it"),
    expires_in_days: int = typer.Option(None, help="days until the key expires"),
) -> None:
    """Create an API key and print it alone on stdout (it is never shown again)."""
    from tenancy.db import session_scope
    from tenancy.errors import OrbinError
    from tenancy.keys import create_api_key
    from tenancy.orgs import read_organization_by_slug

    expires = None
    if expires_in_days:
        expires = int((datetime.now(UTC) + timedelta(days=expires_in_days)).timestamp() * 1000)
    try:
        with session_scope() as session:
            organization = read_organization_by_slug(session, org)
            created = create_api_key(
                session,
                organization_id=organization.id,
                name=name,
                type=type,
                permissions=permission or None,
                expires_at=expires,
            )
    except OrbinError as exc:
        _fail(exc.message)
    typer.echo(created.plaintext)


@key_app.command("list")
def key_list(org: str = typer.Option(..., help="organization slug")) -> None:
    from tenancy.db import session_scope
    from tenancy.keys import read_api_keys
    from tenancy.orgs import read_organization_by_slug

    with session_scope() as session:
        organization = read_organization_by_slug(session, org)
        for k in read_api_keys(session, organization_id=organization.id):
            state = "revoked" if k.revoked_at else "active"
            typer.echo(
                f"{k.id}\t{k.type}\t{k.key_prefix}****{k.last_four_chars}\t{k.name}\t{state}"
            )


@key_app.command("revoke")
def key_revoke(org: str = typer.Option(...), key_id: str = typer.Argument(...)) -> None:
    from tenancy.db import session_scope
    from tenancy.errors import OrbinError
    from tenancy.keys import revoke_api_key
    from tenancy.orgs import read_organization_by_slug

    try:
        with session_scope() as session:
            organization = read_organization_by_slug(session, org)
            revoke_api_key(session, organization_id=organization.id, key_id=key_id)
    except OrbinError as exc:
        _fail(exc.message)
    typer.echo("revoked", err=True)


if __name__ == "__main__":
    sys.exit(app())
