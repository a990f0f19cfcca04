"""AI assistance in the editor and the debugger (``orbin_flows.ai``): a workflow drafted
from plain language, a failed run diagnosed. Offered when the operator configured a model
(``OPENAI_API_KEY``) and the role may use it (members and up); the model's answers are
proposals, validated by the service, and nothing is saved until the user saves."""

from __future__ import annotations

import asyncio

from orbin_flows import ai
from streamlit_app.services.base import Actor, Outcome, attempt, principal_of
from tenancy.errors import OrbinError


def available(actor: Actor) -> bool:
    """Configured on this Orbin and allowed to this user here."""
    try:
        status = ai.ai_status(principal_of(actor))
    except OrbinError:
        return False
    return bool(status["enabled"] and status["allowed"])


def generate(actor: Actor, prompt: str) -> Outcome:
    """``{"spec", "explanation", "warnings"}``: a draft spec, valid as POST /v1/workflows."""
    return attempt(
        "A draft is in the editor: review it, then save.",
        lambda: asyncio.run(ai.generate_workflow(principal_of(actor), prompt=prompt)),
    )


def diagnose(actor: Actor, run_id: str) -> Outcome:
    """``{"summary", "likelyCause", "suggestedFix", "specPatch"?}`` for a run that failed."""
    return attempt(
        "Diagnosis ready.",
        lambda: asyncio.run(ai.diagnose_run(principal_of(actor), run_id=run_id)),
    )
