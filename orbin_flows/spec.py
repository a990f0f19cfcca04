"""The workflow spec: the PRD's ``workflows`` record, validated, with errors by path."""

from __future__ import annotations

import json
import re
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orbin_flows import actions
from orbin_flows.step_refs import check_step_references
from orbin_flows.templates import check_syntax
from tenancy.errors import InvalidInput
from tenancy.retries import DEFAULT_RETRY_POLICY
from tenancy.workflows import WorkflowStatus

SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$"
STEP_ID = r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$"
DEPLOYMENT = r"^[^/\s]{1,200}/[^/\s]{1,200}$"
EVENT_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-/]*\*?$|^\*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


_M = TypeVar("_M", bound=BaseModel)


def _exactly_one(model: _M, first: str, second: str) -> _M:
    """An ``after`` validator's check that one of two optional fields is set, not both."""
    if (getattr(model, first) is None) == (getattr(model, second) is None):
        raise ValueError(f"give exactly one of {first} or {second}")
    return model


class RetryPolicy(_Model):
    maxAttempts: int = Field(DEFAULT_RETRY_POLICY["maxAttempts"], ge=1, le=100)
    backoffCoefficient: float = Field(
        float(DEFAULT_RETRY_POLICY["backoffCoefficient"]), ge=1.0, le=10.0
    )
    initialInterval: int = Field(
        DEFAULT_RETRY_POLICY["initialInterval"], ge=0, le=86_400_000, description="ms"
    )
    maxInterval: int = Field(
        DEFAULT_RETRY_POLICY["maxInterval"], ge=0, le=86_400_000, description="ms"
    )

    def delays_ms(self) -> list[int]:
        """Waits before attempts 2..n: exponential, capped at maxInterval."""
        return [
            int(min(self.initialInterval * self.backoffCoefficient**i, self.maxInterval))
            for i in range(self.maxAttempts - 1)
        ]


class EventTriggerConfig(_Model):
    eventType: str = Field(min_length=1, max_length=200)
    filter: dict[str, Any] | None = Field(
        default=None, description="payload paths (data.a.b) that must equal these values"
    )

    @field_validator("eventType")
    @classmethod
    def _pattern(cls, v: str) -> str:
        if not EVENT_PATTERN.match(v):
            raise ValueError("an event type or a pattern ending in '*' (e.g. order.*)")
        return v


class ScheduleTriggerConfig(_Model):
    cron: str | None = Field(default=None, description="five-field cron, e.g. */5 * * * *")
    interval: float | None = Field(
        default=None, ge=1, le=366 * 86_400, description="seconds between runs, instead of cron"
    )
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from cronsim import CronSim, CronSimError

        try:
            from datetime import datetime

            CronSim(v, datetime(2025, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"not a cron expression: {exc}") from exc
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _one(self) -> ScheduleTriggerConfig:
        return _exactly_one(self, "cron", "interval")


class WebhookTriggerConfig(_Model):
    model_config = ConfigDict(extra="allow")

    provider: Literal["orbin", "github", "stripe", "slack"] = Field(
        "orbin", description="the signature scheme the sender uses"
    )


class EmptyConfig(_Model):
    model_config = ConfigDict(extra="allow")


TRIGGER_CONFIGS: dict[str, type[BaseModel]] = {
    "event": EventTriggerConfig,
    "schedule": ScheduleTriggerConfig,
    "webhook": WebhookTriggerConfig,
    "manual": EmptyConfig,
}


class Trigger(_Model):
    type: Literal["webhook", "schedule", "manual", "event"]
    config: dict[str, Any] = Field(default_factory=dict)


class Step(_Model):
    id: str = Field(pattern=STEP_ID)
    name: str = Field(min_length=1, max_length=200)
    type: Literal["action", "condition", "loop", "delay"]
    config: dict[str, Any] = Field(default_factory=dict)
    retryPolicy: RetryPolicy | None = None
    timeoutSeconds: float | None = Field(default=None, gt=0, le=86_400)


class ConditionConfig(_Model):
    expression: str = Field(min_length=1)
    then: list[Step] = Field(default_factory=list)
    else_: list[Step] = Field(default_factory=list, alias="else")


class LoopConfig(_Model):
    items: Any = Field(description="a list, or a template that renders to one")
    steps: list[Step] = Field(min_length=1)
    concurrency: int = Field(4, ge=1, le=100)
    itemName: str = Field("item", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class _ConditionShell(ConditionConfig):
    """The config with its nested steps unchecked (each is checked on its own, with its path)."""

    then: list[Any] = Field(default_factory=list)  # type: ignore[assignment]
    else_: list[Any] = Field(default_factory=list, alias="else")  # type: ignore[assignment]


class _LoopShell(LoopConfig):
    steps: list[Any] = Field(min_length=1)  # type: ignore[assignment]


class DelayConfig(_Model):
    seconds: float | None = Field(default=None, ge=0, le=366 * 86_400)
    until: str | None = Field(default=None, description="ISO 8601 time, may be a template")

    @model_validator(mode="after")
    def _one_of(self) -> DelayConfig:
        return _exactly_one(self, "seconds", "until")


class WorkflowSpec(_Model):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(pattern=SLUG)
    description: str | None = Field(default=None, max_length=5000)
    status: WorkflowStatus = "draft"
    trigger: Trigger
    steps: list[Step] = Field(default_factory=list, max_length=200)
    timeoutSeconds: float | None = Field(default=None, gt=0, le=7 * 86_400)
    deployment: str | None = Field(
        default=None,
        pattern=DEPLOYMENT,
        description="A code workflow: 'flow-name/deployment-name' of a Prefect deployment "
        "rolled out (prefect deploy) into the organization's work pool; it has no steps.",
    )


def _loc(parts: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


_PATTERN_HINTS = {
    "slug": "lowercase letters, digits and dashes, starting and ending with a letter or digit",
    "id": "letters, digits, '_' and '-', starting with a letter or '_'",
    "deployment": "'flow-name/deployment-name'",
}


def _message(err: dict[str, Any]) -> str:
    if err["type"] == "missing":
        return "field required"
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "string_pattern_mismatch" and err["loc"]:
        hint = _PATTERN_HINTS.get(str(err["loc"][-1]))
        if hint:
            return hint
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _errors(exc: ValidationError, prefix: str) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        path = _loc([prefix, *err["loc"]] if prefix else list(err["loc"]))
        out.append({"path": path, "message": _message(err)})
    return out


def _validated(model: type[_M], raw: Any, prefix: str, errors: list[dict[str, str]]) -> _M | None:
    """``raw`` as ``model``, or None with its errors added, their paths under ``prefix``."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors.extend(_errors(exc, prefix))
        return None


def _check_nested(
    raws: list[Any], prefix: str, seen: set[str], errors: list[dict[str, str]]
) -> None:
    for i, raw in enumerate(raws):
        where = f"{prefix}[{i}]"
        _validated(Step, raw, where, errors)
        _check_step(raw, where, seen, errors)


def _check_step(raw: Any, where: str, seen: set[str], errors: list[dict[str, str]]) -> None:
    """What the step's own model cannot see: its type's config, templates, unique ids.

    Works on the raw step, so a bad retry policy does not hide an error in its config, nor a
    bad nested step the other steps of its branch."""
    if not isinstance(raw, dict):
        return
    step_id = raw.get("id")
    if isinstance(step_id, str):
        if step_id in seen:
            errors.append({"path": f"{where}.id", "message": f"duplicate step id {step_id!r}"})
        seen.add(step_id)
    config = raw.get("config", {})
    if not isinstance(config, dict):
        return
    for problem in check_syntax(config):
        errors.append({"path": f"{where}.config", "message": problem})
    kind = raw.get("type")
    if kind == "action":
        name = config.get("action")
        if not name:
            errors.append({"path": f"{where}.config.action", "message": "field required"})
            return
        cls = actions.REGISTRY.get(name) if isinstance(name, str) else None
        if cls is None:
            errors.append(
                {
                    "path": f"{where}.config.action",
                    "message": f"unknown action {name!r}; one of "
                    + ", ".join(sorted(actions.REGISTRY)),
                }
            )
            return
        _validated(cls.Config, config, f"{where}.config", errors)
    elif kind == "condition":
        cond = _validated(_ConditionShell, config, f"{where}.config", errors)
        if cond is not None:
            _check_nested(cond.then, f"{where}.config.then", seen, errors)
            _check_nested(cond.else_, f"{where}.config.else", seen, errors)
    elif kind == "loop":
        loop = _validated(_LoopShell, config, f"{where}.config", errors)
        if loop is not None:
            _check_nested(loop.steps, f"{where}.config.steps", seen, errors)
    elif kind == "delay":
        _validated(DelayConfig, config, f"{where}.config", errors)


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a few lines of them can expand to billions of nodes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases (*name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(raw: bytes | str) -> Any:
    """A YAML spec as JSON data (dates become ISO strings)."""
    value = yaml.load(raw, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    return json.loads(json.dumps(value, default=_iso, allow_nan=False))


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def validate_spec(data: Any) -> WorkflowSpec:
    """The spec, or InvalidInput listing the path and reason of every error (all of them:
    a missing name does not hide a bad step config)."""
    if not isinstance(data, dict):
        raise InvalidInput(
            "a workflow spec must be a JSON object",
            details=[{"path": "", "message": "expected an object"}],
        )
    errors: list[dict[str, str]] = []
    spec = _validated(WorkflowSpec, data, "", errors)
    trigger = _parsed(Trigger, data.get("trigger"))
    if trigger is not None:
        _validated(TRIGGER_CONFIGS[trigger.type], trigger.config, "trigger.config", errors)
    raw_steps = data.get("steps")
    if isinstance(raw_steps, list):
        seen: set[str] = set()
        for i, raw in enumerate(raw_steps):
            _check_step(raw, f"steps[{i}]", seen, errors)
        if raw_steps and data.get("deployment"):
            errors.append({"path": "steps", "message": "a code workflow (deployment) has no steps"})
        errors.extend(check_step_references(raw_steps))
    if errors or spec is None:
        raise InvalidInput(_summary(errors), details=errors)
    return spec


def _parsed(model: type[Any], raw: Any) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None  # reported by the validation of the whole spec


def _summary(errors: list[dict[str, str]]) -> str:
    head = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return f"invalid workflow: {head}{more}"


_REF = "#/$defs/{model}"


def _add_def(defs: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    sub = model.model_json_schema(by_alias=True, ref_template=_REF)
    for name, inner in sub.pop("$defs", {}).items():
        defs.setdefault(name, inner)
    defs[model.__name__] = sub
    return {"$ref": _REF.format(model=model.__name__)}


def _when(field: str, value: str, then: dict[str, Any]) -> dict[str, Any]:
    return {
        "if": {"properties": {field: {"const": value}}, "required": [field]},
        "then": {"properties": {"config": then}},
    }


def spec_json_schema() -> dict[str, Any]:
    """A JSON Schema (2020-12) of a workflow spec, for editors: each step's ``config`` is
    described by its type, and an action's by its ``action`` name."""
    schema = WorkflowSpec.model_json_schema(by_alias=True, ref_template=_REF)
    defs = schema.setdefault("$defs", {})
    variants = []
    for name, cls in sorted(actions.REGISTRY.items()):
        ref = _add_def(defs, cls.Config)
        defs[cls.Config.__name__]["properties"]["action"] = {"const": name, "title": "Action"}
        variants.append(ref)
    defs["Step"]["allOf"] = [
        _when("type", "action", {"oneOf": variants}),
        _when("type", "condition", _add_def(defs, ConditionConfig)),
        _when("type", "loop", _add_def(defs, LoopConfig)),
        _when("type", "delay", _add_def(defs, DelayConfig)),
    ]
    defs["DelayConfig"]["oneOf"] = [
        {"required": ["seconds"], "properties": {"seconds": {"type": "number"}}},
        {"required": ["until"], "properties": {"until": {"type": "string"}}},
    ]
    defs["Trigger"]["allOf"] = [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {"properties": {"config": _add_def(defs, model)}},
        }
        for name, model in TRIGGER_CONFIGS.items()
        if model is not EmptyConfig
    ]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Orbin workflow"
    return schema
