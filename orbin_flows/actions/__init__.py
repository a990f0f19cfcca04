"""Step actions. One class in one file each; importing this package registers them all."""

from orbin_flows.actions import emit, http, integrations, python, transform  # noqa: F401
from orbin_flows.actions.base import (
    REGISTRY,
    Action,
    FatalStepError,
    RetryableStepError,
    get_action,
)

__all__ = ["REGISTRY", "Action", "FatalStepError", "RetryableStepError", "get_action"]
