"""The workflow spec: every error by path, and a JSON Schema an editor can use."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbin_flows.demo import HELLO_WORKFLOW
from orbin_flows.spec import RetryPolicy, load_yaml, spec_json_schema, validate_spec
from tenancy.errors import InvalidInput

FULL = {
    "name": "Onboard",
    "slug": "onboard",
    "trigger": {"type": "event", "config": {"eventType": "user.*", "filter": {"data.plan": "pro"}}},
    "timeoutSeconds": 600,
    "steps": [
        {
            "id": "lookup",
            "name": "Look up",
            "type": "action",
            "config": {
                "action": "http",
                "method": "POST",
                "url": "https://example.com/users",
                "headers": {"x-a": "b"},
                "query": {"q": "{{ trigger.data.email }}"},
                "body": {"email": "{{ trigger.data.email }}"},
                "expectStatus": [200, 201],
                "timeout": 5,
            },
            "retryPolicy": {
                "maxAttempts": 4,
                "backoffCoefficient": 2,
                "initialInterval": 100,
                "maxInterval": 250,
            },
            "timeoutSeconds": 10,
        },
        {
            "id": "big",
            "name": "Big?",
            "type": "condition",
            "config": {
                "expression": "steps.lookup.output.body.size > 10",
                "then": [
                    {
                        "id": "each",
                        "name": "Each",
                        "type": "loop",
                        "config": {
                            "items": "{{ steps.lookup.output.body.items }}",
                            "concurrency": 2,
                            "steps": [
                                {
                                    "id": "shape",
                                    "name": "Shape",
                                    "type": "action",
                                    "config": {"action": "transform", "output": "{{ item }}"},
                                }
                            ],
                        },
                    }
                ],
                "else": [{"id": "wait", "name": "Wait", "type": "delay", "config": {"seconds": 5}}],
            },
        },
        {
            "id": "tell",
            "name": "Tell",
            "type": "action",
            "config": {"action": "emit", "type": "user.onboarded", "data": {"n": 1}},
        },
        {
            "id": "calc",
            "name": "Calc",
            "type": "action",
            "config": {"action": "python", "code": "def main(input):\n    return 1\n"},
        },
    ],
}


def _errors(data: object) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        validate_spec(data)
    return {d["path"]: d["message"] for d in info.value.details}


def test_a_full_spec_is_valid_and_new_workflows_are_drafts() -> None:
    spec = validate_spec(FULL)
    assert spec.status == "draft"
    assert validate_spec({**FULL, "status": "active"}).status == "active"


def test_every_error_is_reported_with_its_path() -> None:
    bad = copy.deepcopy(FULL)
    del bad["name"]
    bad["slug"] = "Not A Slug"
    bad["trigger"]["config"] = {}
    bad["steps"][0]["config"].pop("url")
    bad["steps"][0]["retryPolicy"]["maxAttempts"] = 0
    bad["steps"][1]["config"]["then"][0]["config"]["steps"][0]["config"]["action"] = "nope"
    bad["steps"][1]["config"]["else"][0]["config"] = {"seconds": 1, "until": "2030-01-01"}
    bad["steps"][2]["id"] = "lookup"
    bad["steps"][3]["config"]["code"] = ""
    bad["steps"].append({"id": "x", "name": "X", "type": "teleport", "config": {}})
    bad["steps"].append({"id": "y", "name": "Y", "type": "action", "config": {"url": "{{ a "}})
    errors = _errors(bad)
    assert errors["name"] == "field required"
    assert "lowercase" in errors["slug"]
    assert errors["trigger.config.eventType"] == "field required"
    assert errors["steps[0].config.url"] == "field required"
    assert "steps[0].retryPolicy.maxAttempts" in errors
    assert (
        "unknown action 'nope'" in errors["steps[1].config.then[0].config.steps[0].config.action"]
    )
    assert "exactly one" in errors["steps[1].config.else[0].config"]
    assert "duplicate" in errors["steps[2].id"]
    assert "steps[3].config.code" in errors
    assert "steps[4].type" in errors
    assert "template syntax" in errors["steps[5].config"]
    assert errors["steps[5].config.action"] == "field required"


@pytest.mark.parametrize(
    "data",
    [None, [], "x", 3, {"steps": "nope"}, {"trigger": [], "steps": [None, 1, "a"]}],
)
def test_garbage_is_an_invalid_input_not_a_crash(data: object) -> None:
    with pytest.raises(InvalidInput):
        validate_spec(data)


def test_code_workflows_name_a_deployment_and_have_no_steps() -> None:
    spec = validate_spec(
        {
            "name": "Hello code",
            "slug": "hello-code",
            "trigger": {"type": "manual"},
            "deployment": "hello-code/hello-code",
        }
    )
    assert spec.deployment == "hello-code/hello-code"
    errors = _errors({**FULL, "deployment": "no-slash"})
    assert "deployment" in errors and "steps" in errors


def test_retry_delays_grow_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(maxAttempts=6, backoffCoefficient=2, initialInterval=100, maxInterval=500)
    assert policy.delays_ms() == [100, 200, 400, 500, 500]
    assert RetryPolicy(maxAttempts=1).delays_ms() == []


def test_yaml_specs_become_json_data() -> None:
    data = load_yaml(b"name: Y\nslug: y\ntrigger: {type: manual}\nsteps: []\nwhen: 2030-01-01\n")
    assert data["when"] == "2030-01-01"
    with pytest.raises(Exception, match="aliases"):
        load_yaml(b"a: &x [1, 2]\nb: [*x, *x, *x]\n")


def test_the_json_schema_is_valid_and_describes_each_step_type() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = spec_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for good in (FULL, HELLO_WORKFLOW):
        assert list(validator.iter_errors(good)) == []
    bad = copy.deepcopy(FULL)
    bad["steps"][0]["config"].pop("url")  # an http action needs a url
    assert list(validator.iter_errors(bad))
    bad = copy.deepcopy(FULL)
    bad["steps"][1]["config"]["then"][0]["config"]["concurrency"] = 0
    assert list(validator.iter_errors(bad))
    bad = copy.deepcopy(FULL)
    bad["trigger"]["config"] = {"cron": "* * * * *"}
    assert list(validator.iter_errors(bad))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    [
        "name",
        "slug",
        "trigger",
        "steps",
        "status",
        "config",
        "type",
        "id",
        "action",
        "url",
        "then",
        "else",
        "items",
        "seconds",
        "retryPolicy",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.integers(0, 5) | _keys, min_size=1, max_size=4), _json), max_size=4
    )
)
def test_any_mutation_of_a_spec_is_valid_or_an_invalid_input(mutations) -> None:
    """Never a crash (a 500): whatever is changed anywhere in a spec."""
    spec = copy.deepcopy(FULL)
    for path, value in mutations:
        node = spec
        for part in path[:-1]:
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
        last = path[-1]
        if isinstance(node, dict) and isinstance(last, str):
            node[last] = value
        elif isinstance(node, list) and isinstance(last, int) and last < len(node):
            node[last] = value
    try:
        validate_spec(spec)
    except InvalidInput as exc:
        assert exc.details and all(d["path"] is not None for d in exc.details)
