"""What every action is: a validated config, and an async run that returns JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class StepError(Exception):
    """A step attempt failed; the message is shown to the user, and so is ``stack``: frames of
    the user's own code (a python step's), never the platform's (those go to the worker log)."""

    def __init__(self, message: str, *, stack: str | None = None) -> None:
        super().__init__(message)
        self.stack = stack


class RetryableStepError(StepError):
    """The attempt failed in a way that may pass next time (5xx, 429, timeout)."""


class FatalStepError(StepError):
    """Retrying cannot help (a 4xx, a bad config): the step fails at once."""


class ActionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    action: str


@dataclass
class StepContext:
    organization_id: str
    organization_slug: str
    run_id: str
    step_id: str
    attempt: int


class Action:
    name: ClassVar[str]
    Config: ClassVar[type[ActionConfig]]

    async def run(self, config: Any, ctx: StepContext) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


REGISTRY: dict[str, type[Action]] = {}


def register(cls: type[Action]) -> type[Action]:
    REGISTRY[cls.name] = cls
    return cls


def get_action(name: str) -> type[Action]:
    try:
        return REGISTRY[name]
    except KeyError as exc:
        raise FatalStepError(f"unknown action {name!r}") from exc
