"""Webhook triggers: the signed URL of each workflow, its secret, the organization's rotation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ingest_api.body import read_body
from ingest_api.deps import CurrentPrincipal, SessionDep
from orbin_flows import webhooks as use_cases
from tenancy.config import get_settings
from tenancy.db import session_scope

router = APIRouter(tags=["webhooks"])


class WebhookSecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: str | None = Field(
        description="the provider's signing secret (Stripe's whsec_..., Slack's); "
        "null: use the secret derived from the organization's"
    )


class RotateIn(BaseModel):
    # strict: {"graceSeconds": false} or "10" is refused (422), not read as 0 or 10
    model_config = ConfigDict(extra="forbid", strict=True)

    graceSeconds: int = Field(
        24 * 3600, description="how long the previous secret keeps verifying (0: not at all)"
    )


def _receive(workflow_id: str, headers: dict[str, str], body: bytes) -> use_cases.WebhookResult:
    with session_scope() as session:
        result = use_cases.receive_webhook(
            session, workflow_id=workflow_id, headers=headers, body=body
        )
    if result.failure is not None:  # committed as a dead letter first
        raise result.failure
    return result


@router.post(
    "/v1/hooks/{workflow_id}",
    status_code=202,
    summary="A workflow's webhook: a signed delivery starts a run",
    responses={401: {"description": "missing, wrong or stale signature"}},
)
async def receive(workflow_id: str, request: Request) -> Any:
    """No API key: the signature authenticates the sender (scheme per the trigger's
    ``provider``: orbin, github, stripe, slack). Answers 202 once the event is stored."""
    body = await read_body(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    result = await run_in_threadpool(_receive, workflow_id, headers, body)
    return JSONResponse(result.answer, result.status_code)


@router.get("/v1/workflows/{workflow_id}/webhook", summary="A workflow's webhook URL and secret")
def get_webhook(
    workflow_id: str, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    # One base for every URL handed out (ORBIN_PUBLIC_URL), never the request's Host.
    return use_cases.webhook_info(session, principal, workflow_id, base_url=get_settings().api_url)


@router.put("/v1/workflows/{workflow_id}/webhook", summary="Set the provider's signing secret")
def put_webhook(
    workflow_id: str,
    body: WebhookSecretIn,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    use_cases.set_provider_secret(session, principal, workflow_id, body.secret)
    return use_cases.webhook_info(session, principal, workflow_id, base_url=get_settings().api_url)


@router.post(
    "/v1/webhook-secret/rotate",
    summary="Rotate the organization's webhook secret (secret keys and admins)",
)
def rotate(session: SessionDep, principal: CurrentPrincipal, body: RotateIn | None = None) -> Any:
    """The new secret is shown once. Every workflow's secret is derived from it, so each
    changes too (read them again at ``GET /v1/workflows/{id}/webhook``); the previous ones
    keep verifying until ``previousSecretValidUntil``."""
    grace = (body or RotateIn()).graceSeconds
    return use_cases.rotate_webhook_secret(session, principal, grace_seconds=grace)
