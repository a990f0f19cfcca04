"""Templates: JSON types kept, strict about missing data, and a sandbox nothing escapes."""

from __future__ import annotations

import time

import pytest

from orbin_flows.templates import TemplateRenderError, check_syntax, evaluate, render

CTX = {
    "trigger": {"type": "user.created", "data": {"email": "ada@example.com", "n": 3, "items": [1]}},
    "steps": {"lookup": {"output": {"status": 200, "body": {"id": 42, "tags": ["a", "b"]}}}},
}


def test_a_lone_expression_keeps_its_json_type_and_text_is_interpolated() -> None:
    out = render(
        {
            "email": "{{ trigger.data.email }}",
            "id": "{{ steps.lookup.output.body.id }}",
            "tags": "{{ steps.lookup.output.body.tags }}",
            "ok": "{{ steps.lookup.output.status == 200 }}",
            "text": "user {{ steps.lookup.output.body.id }} <{{ trigger.data.email }}>",
            "nested": [{"n": "{{ trigger.data.n * 2 }}"}],
            "plain": 7,
        },
        CTX,
    )
    assert out == {
        "email": "ada@example.com",
        "id": 42,
        "tags": ["a", "b"],
        "ok": True,
        "text": "user 42 <ada@example.com>",
        "nested": [{"n": 6}],
        "plain": 7,
    }


def test_json_keys_win_over_dict_methods() -> None:
    assert render("{{ trigger.data.items }}", CTX) == [1]


def test_missing_data_fails_with_the_template_named() -> None:
    with pytest.raises(TemplateRenderError, match="nope"):
        render("{{ trigger.data.nope }}", CTX)
    with pytest.raises(TemplateRenderError, match="nope"):
        render("hi {{ trigger.data.nope }}", CTX)
    assert render("{{ trigger.data.nope | default('x') }}", CTX) == "x"


def test_condition_expressions() -> None:
    assert evaluate("trigger.data.n > 2 and steps.lookup.output.body.id == 42", CTX) is True
    assert evaluate("{{ 'b' in steps.lookup.output.body.tags }}", CTX) is True
    with pytest.raises(TemplateRenderError):
        evaluate("trigger.data.n >", CTX)


ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ trigger.__class__ }}",
    "{{ trigger.data|attr('__class__') }}",
    "{{ (1).__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ config.items() }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}{{ os }}",
    "{% extends '/etc/hostname' %}",
    "{{ trigger.data.update({'email': 'x'}) }}",
    "{{ steps.lookup.output.body.tags.append(1) }}",
    "{{ '{0.__class__}'.format(trigger) }}",
    "{{ ''['format']('{0:>999999999}', 1) }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_fail_as_render_errors(source: str) -> None:
    with pytest.raises(TemplateRenderError):
        render(source, CTX)
    with pytest.raises(TemplateRenderError):
        render(f"x {source} y", CTX)
    assert CTX["trigger"]["data"]["email"] == "ada@example.com"


EXHAUSTION = [
    "{{ 'a' * 10**9 }}",
    "{{ [1] * 10**9 }}",
    "{{ (10**1000) ** 1000 }}",
    "{{ 2 ** 100000 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ '%999999999s' % 1 }}",
    "{{ '%*s' | format(999999999, 'a') }}",
    "{{ 'a' | center(999999999) }}",
    "{{ 'a' | indent(999999999) }}",
]


@pytest.mark.parametrize("source", EXHAUSTION)
def test_templates_cannot_stall_or_exhaust_the_worker(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateRenderError):
        render(source, CTX)
    assert time.monotonic() - started < 2


def test_syntax_errors_are_found_when_saving() -> None:
    assert check_syntax({"a": ["{{ ok }}", "{{ broken "]})
    assert check_syntax({"a": "{% for %}"})
    assert check_syntax({"a": "{{ steps.x.output }} and {{ trigger.data }}"}) == []
