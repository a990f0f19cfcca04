"""``orbin secrets``: re-encrypt stored secrets under the newest key of ``ORBIN_SECRET_KEY``.

Rotation: put the new key first (``ORBIN_SECRET_KEY=new,old``), restart, run
``orbin secrets rotate``, then drop the old key."""

from __future__ import annotations

import typer

secrets_app = typer.Typer(no_args_is_help=True, help="Secrets encrypted at rest.")


@secrets_app.command("rotate")
def rotate() -> None:
    """Re-encrypt every integration's credentials under the newest key."""
    from tenancy.db import session_scope
    from tenancy.integrations import reencrypt_all

    with session_scope() as session:
        n = reencrypt_all(session)
    typer.echo(f"re-encrypted the credentials of {n} integration(s)", err=True)
