"""The workflow spec: the PRD's ``workflows`` record, validated, with errors by path."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orbin_flows import actions
from orbin_flows.templates import check_syntax
from tenancy.errors import InvalidInput

SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$"
STEP_ID = r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$"
EVENT_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-/]*\*?$|^\*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RetryPolicy(_Model):
    maxAttempts: int = Field(3, ge=1, le=100)
    backoffCoefficient: float = Field(2.0, ge=1.0, le=10.0)
    initialInterval: int = Field(1000, ge=0, le=86_400_000, description="ms")
    maxInterval: int = Field(60_000, ge=0, le=86_400_000, description="ms")

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
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of cron or interval")
        return self


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


class DelayConfig(_Model):
    seconds: float | None = Field(default=None, ge=0, le=366 * 86_400)
    until: str | None = Field(default=None, description="ISO 8601 time, may be a template")

    def model_post_init(self, __context: Any) -> None:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("give exactly one of seconds or until")


class WorkflowSpec(_Model):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(pattern=SLUG)
    description: str | None = Field(default=None, max_length=5000)
    status: Literal["draft", "active", "paused", "archived"] = "draft"
    trigger: Trigger
    steps: list[Step] = Field(default_factory=list, max_length=200)
    timeoutSeconds: float | None = Field(default=None, gt=0, le=7 * 86_400)


def _loc(parts: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def _message(err: dict[str, Any]) -> str:
    if err["type"] == "missing":
        return "field required"
    if err["type"] == "extra_forbidden":
        return "unknown field"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _errors(exc: ValidationError, prefix: str) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        path = _loc([prefix, *err["loc"]] if prefix else list(err["loc"]))
        out.append({"path": path, "message": _message(err)})
    return out


def _check_steps(
    steps: list[Step], prefix: str, seen: set[str], errors: list[dict[str, str]]
) -> None:
    for i, step in enumerate(steps):
        where = f"{prefix}[{i}]"
        if step.id in seen:
            errors.append({"path": f"{where}.id", "message": f"duplicate step id {step.id!r}"})
        seen.add(step.id)
        for problem in check_syntax(step.config):
            errors.append({"path": f"{where}.config", "message": problem})
        if step.type == "action":
            name = step.config.get("action")
            if not name:
                errors.append({"path": f"{where}.config.action", "message": "field required"})
                continue
            cls = actions.REGISTRY.get(name)
            if cls is None:
                errors.append(
                    {
                        "path": f"{where}.config.action",
                        "message": f"unknown action {name!r}; one of "
                        + ", ".join(sorted(actions.REGISTRY)),
                    }
                )
                continue
            try:
                cls.Config.model_validate(step.config)
            except ValidationError as exc:
                errors.extend(_errors(exc, f"{where}.config"))
        elif step.type == "condition":
            try:
                cond = ConditionConfig.model_validate(step.config)
            except ValidationError as exc:
                errors.extend(_errors(exc, f"{where}.config"))
                continue
            _check_steps(cond.then, f"{where}.config.then", seen, errors)
            _check_steps(cond.else_, f"{where}.config.else", seen, errors)
        elif step.type == "loop":
            try:
                loop = LoopConfig.model_validate(step.config)
            except ValidationError as exc:
                errors.extend(_errors(exc, f"{where}.config"))
                continue
            _check_steps(loop.steps, f"{where}.config.steps", seen, errors)
        elif step.type == "delay":
            try:
                DelayConfig.model_validate(step.config)
            except ValidationError as exc:
                errors.extend(_errors(exc, f"{where}.config"))
            except ValueError as exc:
                errors.append({"path": f"{where}.config", "message": str(exc)})


def validate_spec(data: Any) -> WorkflowSpec:
    """The spec, or InvalidInput listing the path and reason of every error."""
    if not isinstance(data, dict):
        raise InvalidInput("a workflow spec must be a JSON object")
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        errors = _errors(exc, "")
        raise InvalidInput(_summary(errors), details=errors) from exc
    errors: list[dict[str, str]] = []
    trig_cls = TRIGGER_CONFIGS[spec.trigger.type]
    try:
        trig_cls.model_validate(spec.trigger.config)
    except ValidationError as exc:
        errors.extend(_errors(exc, "trigger.config"))
    _check_steps(spec.steps, "steps", set(), errors)
    if errors:
        raise InvalidInput(_summary(errors), details=errors)
    return spec


def _summary(errors: list[dict[str, str]]) -> str:
    head = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return f"invalid workflow: {head}{more}"


def spec_json_schema() -> dict[str, Any]:
    schema = WorkflowSpec.model_json_schema(by_alias=True)
    schema["$defs"] = schema.get("$defs", {})
    schema["$defs"]["actions"] = {
        name: cls.Config.model_json_schema(by_alias=True) for name, cls in actions.REGISTRY.items()
    }
    schema["$defs"]["triggers"] = {
        name: cls.model_json_schema() for name, cls in TRIGGER_CONFIGS.items()
    }
    schema["$defs"]["stepConfigs"] = {
        "condition": ConditionConfig.model_json_schema(by_alias=True),
        "loop": LoopConfig.model_json_schema(by_alias=True),
        "delay": DelayConfig.model_json_schema(),
    }
    return schema
