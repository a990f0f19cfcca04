"""``transform``: the rendered ``output`` is the step's output."""

from __future__ import annotations

from typing import Any

from orbin_flows.actions.base import Action, ActionConfig, StepContext, register


class TransformConfig(ActionConfig):
    output: Any = None


@register
class Transform(Action):
    name = "transform"
    Config = TransformConfig

    async def run(self, config: TransformConfig, ctx: StepContext) -> Any:
        return config.output
