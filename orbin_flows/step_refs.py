"""Which steps a spec's templates read, checked when the workflow is saved.

A template can read ``steps.<id>.output`` of a step that has run before it: an earlier step
of the same sequence, one inside an earlier condition's branch, or an earlier step of the
same loop iteration. A step that does not exist, runs later, contains this one, or sits in
a loop (seen only inside it) or in the other branch of a condition would fail the run with
an undefined value; it is an error at save time instead, naming the path.
"""

from __future__ import annotations

from typing import Any

from orbin_flows.templates import step_references

_NESTED = {"condition": ("then", "else"), "loop": ("steps",)}


def _ids(raws: Any) -> set[str]:
    out: set[str] = set()
    for raw in raws if isinstance(raws, list) else []:
        if not isinstance(raw, dict):
            continue
        if isinstance(raw.get("id"), str):
            out.add(raw["id"])
        config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
        for key in _NESTED.get(raw.get("type"), ()):  # type: ignore[call-overload]
            out |= _ids(config.get(key))
    return out


class _Checker:
    def __init__(self, steps: list[Any]) -> None:
        self.all = _ids(steps)
        self.seen: set[str] = set()  # ids met so far, in document order
        self.enclosing: list[str] = []  # the conditions and loops around the current step
        self.errors: list[dict[str, str]] = []

    def why_not(self, ref: str, own: str | None) -> str:
        if ref not in self.all:
            return f"names step {ref!r}, which does not exist in this workflow"
        if ref == own:
            return f"names its own step {ref!r}: its output exists only after it ran"
        if ref in self.enclosing:
            return f"names step {ref!r}, which contains this one: its output comes after"
        if ref not in self.seen:
            return f"names step {ref!r}, which runs after this one"
        return (
            f"names step {ref!r}, which is not run before it here (it is inside a loop, "
            "seen only by that loop's steps, or in another branch of a condition)"
        )

    def value(self, value: Any, path: str, own: str | None, visible: set[str], expr: bool) -> None:
        if isinstance(value, str):
            for ref in step_references(value, expression=expr):
                if ref not in visible:
                    self.errors.append({"path": path, "message": self.why_not(ref, own)})
        elif isinstance(value, dict):
            for k, v in value.items():
                self.value(v, f"{path}.{k}", own, visible, False)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.value(v, f"{path}[{i}]", own, visible, False)

    def sequence(self, raws: list[Any], prefix: str, available: set[str]) -> set[str]:
        """Checks the steps in order; returns the ids whose outputs they leave behind."""
        visible = set(available)
        left: set[str] = set()
        for i, raw in enumerate(raws):
            if not isinstance(raw, dict):
                continue
            where = f"{prefix}[{i}]"
            own = raw["id"] if isinstance(raw.get("id"), str) else None
            kind = raw.get("type")
            config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
            nested = _NESTED.get(kind, ()) if isinstance(kind, str) else ()
            for key, v in config.items():
                if key not in nested:
                    expr = kind == "condition" and key == "expression"
                    self.value(v, f"{where}.config.{key}", own, visible, expr)
            if own:
                self.seen.add(own)
                self.enclosing.append(own)
            new = {own} if own else set()
            for key in nested:
                inner = config.get(key)
                if isinstance(inner, list):
                    out = self.sequence(inner, f"{where}.config.{key}", visible)
                    if kind == "condition":  # a branch shares the run's steps
                        new |= out
            if own:
                self.enclosing.pop()
            visible |= new
            left |= new
        return left


def check_step_references(steps: Any) -> list[dict[str, str]]:
    """``{"path", "message"}`` for every template that names a step it cannot read."""
    if not isinstance(steps, list):
        return []
    checker = _Checker(steps)
    checker.sequence(steps, "steps", set())
    return checker.errors
