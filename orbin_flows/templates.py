"""Templates over the trigger and earlier step outputs, rendered in Jinja's sandbox.

``"{{ steps.lookup.output.body.id }}"`` alone keeps its JSON type (a number stays a number);
inside a longer string it is interpolated as text. The sandbox refuses attribute access to
Python internals, and nothing in the context reaches files or the network.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

_SINGLE = re.compile(r"^\s*\{\{(.*?)\}\}\s*$", re.S)


class TemplateRenderError(ValueError):
    pass


def _tojson(value: Any) -> str:
    return json.dumps(value, default=str)


@lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters["tojson"] = _tojson
    env.filters["json"] = _tojson
    return env


@lru_cache(maxsize=4096)
def _compile_expression(expr: str) -> Any:
    return _env().compile_expression(expr, undefined_to_none=True)


@lru_cache(maxsize=4096)
def _compile_template(source: str) -> Any:
    return _env().from_string(source)


def has_template(value: str) -> bool:
    return "{{" in value or "{%" in value


def render_string(value: str, context: dict[str, Any]) -> Any:
    if not has_template(value):
        return value
    try:
        single = _SINGLE.match(value)
        if single and "}}" not in single.group(1) and "{{" not in single.group(1):
            result = _compile_expression(single.group(1).strip())(**context)
            return _plain(result)
        return _compile_template(value).render(**context)
    except TemplateError as exc:
        raise TemplateRenderError(f"template {value!r}: {exc}") from exc
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError) as exc:
        raise TemplateRenderError(f"template {value!r}: {exc}") from exc


def _plain(value: Any) -> Any:
    if isinstance(value, Undefined):
        return None
    return value


def render(value: Any, context: dict[str, Any]) -> Any:
    """Render every string inside any JSON value."""
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """A safe expression (condition steps): ``trigger.data.total > 100 and steps.a.output.ok``."""
    expr = expression.strip()
    if expr.startswith("{{") and expr.endswith("}}"):
        expr = expr[2:-2].strip()
    try:
        return _plain(_compile_expression(expr)(**context))
    except (
        TemplateError,
        TypeError,
        ValueError,
        KeyError,
        AttributeError,
        ZeroDivisionError,
    ) as exc:
        raise TemplateRenderError(f"expression {expression!r}: {exc}") from exc


def check_syntax(value: Any) -> list[str]:
    """Syntax errors of every template inside a value, found when a workflow is saved."""
    errors: list[str] = []
    if isinstance(value, str) and has_template(value):
        try:
            single = _SINGLE.match(value)
            if single and "{{" not in single.group(1):
                _compile_expression(single.group(1).strip())
            else:
                _compile_template(value)
        except TemplateError as exc:
            errors.append(f"template syntax: {exc}")
    elif isinstance(value, dict):
        for v in value.values():
            errors.extend(check_syntax(v))
    elif isinstance(value, list):
        for v in value:
            errors.extend(check_syntax(v))
    return errors
