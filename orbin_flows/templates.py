"""Templates over the trigger and earlier step outputs, rendered in Jinja's sandbox.

``"{{ steps.lookup.output.body.id }}"`` alone keeps its JSON type (a number stays a number);
inside a longer string it is interpolated as text. A template is tenant input run inside the
shared worker, so the sandbox refuses attribute access to Python internals, the context holds
nothing but JSON data (no ``cycler``, ``joiner``, ``lipsum`` or ``namespace`` objects whose
globals lead to modules), nothing can load a file, and loops, powers and repetitions are
bounded so that a template cannot stall or exhaust the worker. Every failure, escapes included,
is a ``TemplateRenderError``: the step fails, the worker does not.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterator
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

_SINGLE = re.compile(r"^\s*\{\{(.*?)\}\}\s*$", re.S)

MAX_ITERATIONS = 100_000  # range() items per render, all loops together
MAX_OUTPUT = 1_000_000  # characters of one rendered string, and of * or ** results
MAX_EXPONENT = 1_000

_budget: ContextVar[list[int] | None] = ContextVar("orbin_template_budget", default=None)


class TemplateRenderError(ValueError):
    pass


def _tojson(value: Any) -> str:
    return json.dumps(value, default=str)


def _range(*args: int) -> Iterator[int]:
    """``range`` that counts every item against the render's budget."""
    budget = _budget.get()
    for i in range(*args):
        if budget is not None:
            budget[0] -= 1
            if budget[0] < 0:
                raise SecurityError(f"templates may loop at most {MAX_ITERATIONS} times")
        yield i


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


def _mul(left: Any, right: Any) -> Any:
    for seq, n in ((left, right), (right, left)):
        if _size(seq) and isinstance(n, int) and _size(seq) * n > MAX_OUTPUT:
            raise SecurityError("the result of * would be too large")
    return operator.mul(left, right)


_WIDTH = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d*)(?:\.(\*|\d+))?")


def _mod(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        for width, precision in _WIDTH.findall(left):
            if "*" in (width, precision):
                raise SecurityError("a * width in % formats is not allowed")
            if int(width or 0) > 10_000 or int(precision or 0) > 10_000:
                raise SecurityError("a % format width above 10000 is not allowed")
    return operator.mod(left, right)


def _format_filter(value: str, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise SecurityError("|format takes positional or keyword arguments, not both")
    return _mod(value, kwargs or args)


def _pow(left: Any, right: Any) -> Any:
    if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
        raise SecurityError(f"exponents above {MAX_EXPONENT} are not allowed")
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > 100_000:
        raise SecurityError("the result of ** would be too large")
    return operator.pow(left, right)


def _no_str_format(*args: Any, **kwargs: Any) -> Any:
    raise SecurityError("str.format is not available in templates; use ~ or |format")


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            return _mul(left, right)
        if operator_ == "**":
            return _pow(left, right)
        if operator_ == "%":
            return _mod(left, right)
        return super().call_binop(context, operator_, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # JSON first: ``output.items`` is the key "items", not the dict method.
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> Any:
        # str.format can pad to any width; the |format filter and ~ remain.
        if super().wrap_str_format(value) is not None:
            return _no_str_format
        return None


@lru_cache(maxsize=1)
def _env() -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False)
    env.globals.clear()
    env.globals["range"] = _range
    env.filters["tojson"] = _tojson
    env.filters["json"] = _tojson
    env.filters["format"] = _format_filter
    for name in ("center", "indent", "wordwrap", "urlize", "xmlattr"):
        env.filters.pop(name, None)
    return env


@lru_cache(maxsize=4096)
def _compile_expression(expr: str) -> Any:
    return _env().compile_expression(expr, undefined_to_none=False)


@lru_cache(maxsize=4096)
def _compile_template(source: str) -> Any:
    return _env().from_string(source)


def has_template(value: str) -> bool:
    return "{{" in value or "{%" in value


def _single_expression(value: str) -> str | None:
    single = _SINGLE.match(value)
    if single and "}}" not in single.group(1) and "{{" not in single.group(1):
        return single.group(1).strip()
    return None


def _guarded(label: str, fn: Any, *args: Any) -> Any:
    token = _budget.set([MAX_ITERATIONS])
    try:
        return fn(*args)
    except TemplateRenderError:
        raise
    except RecursionError as exc:
        raise TemplateRenderError(f"{label}: nests too deeply") from exc
    except MemoryError as exc:
        raise TemplateRenderError(f"{label}: needs too much memory") from exc
    except Exception as exc:  # noqa: BLE001 - any template failure is the step's, not ours
        raise TemplateRenderError(f"{label}: {exc}") from exc
    finally:
        _budget.reset(token)


def _plain(value: Any) -> Any:
    """The JSON value of an expression; an undefined one fails like StrictUndefined does."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, range):
        return list(value)
    if isinstance(value, Iterator):
        return [_plain(v) for v in value]
    raise TypeError(f"an expression must give JSON data, not {type(value).__name__}")


def _render_text(source: str, context: dict[str, Any]) -> str:
    out = _compile_template(source).render(**context)
    if len(out) > MAX_OUTPUT:
        raise SecurityError(f"the rendered text exceeds {MAX_OUTPUT} characters")
    return out


def render_string(value: str, context: dict[str, Any]) -> Any:
    if not has_template(value):
        return value
    label = f"template {value[:200]!r}"
    expr = _single_expression(value)
    if expr is not None:
        return _guarded(label, lambda: _plain(_compile_expression(expr)(**context)))
    return _guarded(label, _render_text, value, context)


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
    return _guarded(
        f"expression {expression[:200]!r}", lambda: _plain(_compile_expression(expr)(**context))
    )


def check_syntax(value: Any) -> list[str]:
    """Syntax errors of every template inside a value, found when a workflow is saved."""
    errors: list[str] = []
    if isinstance(value, str) and has_template(value):
        try:
            expr = _single_expression(value)
            if expr is not None:
                _compile_expression(expr)
            else:
                _compile_template(value)
        except Exception as exc:  # noqa: BLE001 - TemplateSyntaxError and friends
            errors.append(f"template syntax: {exc}")
    elif isinstance(value, dict):
        for v in value.values():
            errors.extend(check_syntax(v))
    elif isinstance(value, list):
        for v in value:
            errors.extend(check_syntax(v))
    return errors


def step_references(value: str, *, expression: bool = False) -> list[str]:
    """The step ids a template (or, with ``expression``, a condition's bare expression)
    reads as ``steps.<id>`` or ``steps["<id>"]``, in order; none if it does not parse (the
    syntax check reports that)."""
    from jinja2 import nodes

    if expression:
        text = value.strip()
        if text.startswith("{{") and text.endswith("}}"):
            text = text[2:-2]
        source = "{{ " + text + " }}"
    elif has_template(value):
        source = value
    else:
        return []
    try:
        tree = _env().parse(source)
    except Exception:  # noqa: BLE001 - TemplateSyntaxError and friends
        return []
    found: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not (isinstance(node.node, nodes.Name) and node.node.name == "steps"):
            continue
        if isinstance(node, nodes.Getattr):
            found.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            found.append(node.arg.value)
    return list(dict.fromkeys(found))
