"""AI assistance through any OpenAI-compatible server (see the README's AI section)."""

from orbin_flows.ai.errors import AIAnswerInvalid, AINotConfigured, AIRateLimited, AIUpstreamError
from orbin_flows.ai.service import (
    ai_status,
    diagnose_run,
    generate_workflow,
    optimize_workflow,
    read_usage,
    suggest_steps,
)

__all__ = [
    "AIAnswerInvalid",
    "AINotConfigured",
    "AIRateLimited",
    "AIUpstreamError",
    "ai_status",
    "diagnose_run",
    "generate_workflow",
    "optimize_workflow",
    "read_usage",
    "suggest_steps",
]
