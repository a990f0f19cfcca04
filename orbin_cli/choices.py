"""Options that take one of a fixed set of values: an unknown value is refused before anything
is done, with the valid values (Typer's own choices need an Enum per set)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer


def one_of(values: Sequence[str], what: str) -> Callable[[Any], Any]:
    """A Typer callback accepting ``values`` only (a repeated option: each of them)."""

    def check(value: Any) -> Any:
        given = value if isinstance(value, list | tuple) else [value]
        unknown = [v for v in given if v is not None and v not in values]
        if unknown:
            names = ", ".join(repr(v) for v in unknown)
            raise typer.BadParameter(f"unknown {what} {names}; one of: {', '.join(values)}")
        return value

    return check


def listing(values: Sequence[str]) -> str:
    return "one of: " + ", ".join(values)
