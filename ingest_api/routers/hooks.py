"""Webhook triggers: the signed URL of each workflow, its secret, the organization's rotation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ingest_api.deps import CurrentPrincipal, SessionDep
from ingest_api.errors import ApiError
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
    model_config = ConfigDict(extra="forbid")

    graceSeconds: int = Field(
        24 * 3600, description="how long the previous secret keeps verifying (0: not at all)"
    )


async def _raw_body(request: Request) -> bytes:
    limit = get_settings().max_body_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise ApiError(413, "payload_too_large", f"the body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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
    body = await _raw_body(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    result = await run_in_threadpool(_receive, workflow_id, headers, body)
    return JSONResponse(result.answer, result.status_code)


def _base_url(request: Request) -> str:
    return get_settings().public_url or str(request.base_url)


@router.get("/v1/workflows/{workflow_id}/webhook", summary="A workflow's webhook URL and secret")
def get_webhook(
    workflow_id: str, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return use_cases.webhook_info(session, principal, workflow_id, base_url=_base_url(request))


@router.put("/v1/workflows/{workflow_id}/webhook", summary="Set the provider's signing secret")
def put_webhook(
    workflow_id: str,
    body: WebhookSecretIn,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    use_cases.set_provider_secret(session, principal, workflow_id, body.secret)
    return use_cases.webhook_info(session, principal, workflow_id, base_url=_base_url(request))


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
