"""Integrations: create, list, read, change, delete, test the connection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from ingest_api.body import read_json
from ingest_api.deps import CurrentPrincipal, SessionDep
from ingest_api.schemas.integrations import (
    ConnectionTest,
    IntegrationPublic,
    IntegrationsPage,
    OAuthStart,
)
from orbin_flows.integrations import oauth, service
from orbin_flows.integrations.providers import PROVIDERS

router = APIRouter(prefix="/v1/integrations", tags=["integrations"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["provider", "name"],
                    "properties": {
                        "provider": {"enum": sorted(PROVIDERS)},
                        "name": {"type": "string"},
                        "config": {"type": "object"},
                        "credentials": {"type": "object", "writeOnly": True},
                    },
                }
            }
        },
    }
}


@router.get("/oauth/{provider}/start", response_model=OAuthStart)
def start_oauth(provider: str, principal: CurrentPrincipal, name: str = Query(...)) -> OAuthStart:
    """The provider's authorize URL (state + PKCE) for connecting integration ``name``; send
    the user there. The provider sends them back to ``.../callback``."""
    return OAuthStart(authorizeUrl=oauth.start(principal, provider, name))


@router.get("/oauth/{provider}/callback", response_model=IntegrationPublic)
async def oauth_callback(
    provider: str,
    tasks: BackgroundTasks,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Any:
    """Where the provider returns the user: no API key, the encrypted ``state`` says which
    organization and integration this is. The tokens are stored encrypted."""
    row = await oauth.complete(provider, code=code, state=state, error=error)
    tasks.add_task(service.sync_block, row.organization_id, row.id)
    return IntegrationPublic.of(row)


@router.post("", status_code=201, response_model=IntegrationPublic, openapi_extra=_BODY)
async def create_integration(
    request: Request, session: SessionDep, principal: CurrentPrincipal, tasks: BackgroundTasks
) -> Any:
    """Connect a provider. ``credentials`` are encrypted at rest and never answered; a Prefect
    block document ``<org-slug>-<name>`` is written after the answer, for code flows."""
    body = await read_json(request)
    row = await run_in_threadpool(service.create_integration, session, principal, body)
    tasks.add_task(service.sync_block, principal.organization_id, row.id)
    return IntegrationPublic.of(row)


@router.get("", response_model=IntegrationsPage)
def list_integrations(
    session: SessionDep,
    principal: CurrentPrincipal,
    provider: str | None = Query(None, enum=sorted(PROVIDERS)),
) -> IntegrationsPage:
    rows = service.read_integrations(session, principal, provider)
    return IntegrationsPage(data=[IntegrationPublic.of(r) for r in rows])


@router.get("/{integration_id}", response_model=IntegrationPublic)
def get_integration(
    integration_id: str, session: SessionDep, principal: CurrentPrincipal
) -> IntegrationPublic:
    return IntegrationPublic.of(service.read_integration(session, principal, integration_id))


@router.patch("/{integration_id}", response_model=IntegrationPublic)
async def update_integration(
    integration_id: str,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    tasks: BackgroundTasks,
) -> Any:
    """Change the name, the config or some credentials (merged over the stored ones)."""
    body = await read_json(request)
    before = await run_in_threadpool(service.read_integration, session, principal, integration_id)
    old_name = before.name
    row = await run_in_threadpool(
        service.update_integration, session, principal, integration_id, body
    )
    if row.name != old_name:
        tasks.add_task(service.drop_block, principal.organization_slug, old_name, row.provider)
    tasks.add_task(service.sync_block, principal.organization_id, row.id)
    return IntegrationPublic.of(row)


@router.delete("/{integration_id}", status_code=204)
def delete_integration(
    integration_id: str, session: SessionDep, principal: CurrentPrincipal, tasks: BackgroundTasks
) -> Response:
    row = service.read_integration(session, principal, integration_id)
    name, provider = row.name, row.provider
    service.delete_integration(session, principal, integration_id)
    tasks.add_task(service.drop_block, principal.organization_slug, name, provider)
    return Response(status_code=204)


@router.post("/{integration_id}/test", response_model=ConnectionTest)
async def test_integration(integration_id: str, principal: CurrentPrincipal) -> Any:
    """A real call to the provider (Slack ``auth.test``, GitHub ``GET /user``, a signed ping
    for a webhook): ``{"ok": false, "detail": <the provider's answer>}`` when it fails."""
    resolved = await run_in_threadpool(service.resolve_for_test, principal, integration_id)
    return await service.test_connection(resolved)
