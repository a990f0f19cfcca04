"""How a command ends on a domain error: ``error: <message>`` on stderr and an exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from tenancy.db import Session


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def transaction(code: int) -> Iterator[Session]:
    """A session committed at the end; a domain error (OrbinError) ends the command instead."""
    from tenancy.db import session_scope
    from tenancy.errors import OrbinError

    try:
        with session_scope() as session:
            yield session
    except OrbinError as exc:
        fail(exc.message, code)
