"""Integration use cases: create, change, delete, test a connection, record a step's call.

Writes and tests need an admin (or a secret key): an integration holds the organization's
credentials. Reading the list (never the credentials) needs ``workflows:read``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from orbin_flows.integrations.errors import ProviderError
from orbin_flows.integrations.providers import check_config, check_credentials, provider
from tenancy import integrations as repo
from tenancy.audit import record_audit
from tenancy.db import Session, session_scope
from tenancy.errors import InvalidInput
from tenancy.integrations import Integration, ResolvedIntegration
from tenancy.principal import Principal, require_admin

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_CREATE_FIELDS = {"provider", "name", "config", "credentials"}
_UPDATE_FIELDS = {"name", "config", "credentials"}
SYNC_TIMEOUT_SECONDS = 20.0


def _object(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", details=[{"field": ""}])
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r}; allowed: " + ", ".join(sorted(allowed)),
            details=[{"field": f, "message": "unknown field"} for f in unknown],
        )
    return body


def _name(value: Any) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise InvalidInput(
            "name: 1-63 letters, digits, '-' or '_', starting with a letter or digit",
            details=[{"field": "name", "message": "invalid name"}],
        )
    return value


def create_integration(session: Session, principal: Principal, body: Any) -> Integration:
    require_admin(principal)
    data = _object(body, _CREATE_FIELDS)
    for required in ("provider", "name"):
        if required not in data:
            raise InvalidInput(
                f"{required}: field required", details=[{"field": required, "message": "required"}]
            )
    p = provider(data["provider"])
    name = _name(data["name"])
    config = check_config(p, data.get("config"))
    credentials = check_credentials(p, data.get("credentials"))
    row = repo.create_integration(
        session,
        organization_id=principal.organization_id,
        provider=p.name,
        name=name,
        config=config,
        credentials=credentials,
        connected_by=principal.user_id,
    )
    record_audit(
        session, principal, "integration.created", "integration", row.id, {"provider": p.name}
    )
    return row


def read_integrations(
    session: Session, principal: Principal, provider_name: str | None = None
) -> list[Integration]:
    principal.require("workflows:read")
    if provider_name is not None:
        provider(provider_name)  # an unknown one is refused, naming the providers
    return repo.read_integrations(
        session, organization_id=principal.organization_id, provider=provider_name
    )


def read_integration(session: Session, principal: Principal, integration_id: str) -> Integration:
    principal.require("workflows:read")
    return repo.read_integration(
        session, organization_id=principal.organization_id, integration_id=integration_id
    )


def update_integration(
    session: Session, principal: Principal, integration_id: str, body: Any
) -> Integration:
    """``credentials`` given are merged over the stored ones: a PATCH may change one secret."""
    require_admin(principal)
    data = _object(body, _UPDATE_FIELDS)
    row = repo.read_integration(
        session, organization_id=principal.organization_id, integration_id=integration_id
    )
    p = provider(row.provider)
    config = check_config(p, data["config"]) if "config" in data else None
    credentials = None
    if "credentials" in data:
        given = data["credentials"]
        if not isinstance(given, dict):
            raise InvalidInput("credentials: must be an object", details=[{"field": "credentials"}])
        credentials = check_credentials(p, {**repo.credentials_of(row), **given})
    repo.update_integration(
        session,
        integration=row,
        name=_name(data["name"]) if "name" in data else None,
        config=config,
        credentials=credentials,
    )
    changed = sorted(data)
    record_audit(
        session, principal, "integration.updated", "integration", row.id, {"changed": changed}
    )
    return row


def delete_integration(session: Session, principal: Principal, integration_id: str) -> None:
    require_admin(principal)
    row = repo.read_integration(
        session, organization_id=principal.organization_id, integration_id=integration_id
    )
    repo.delete_integration(session, integration=row)
    record_audit(
        session, principal, "integration.deleted", "integration", integration_id, {"name": row.name}
    )


def resolve_for_test(principal: Principal, integration_id: str) -> ResolvedIntegration:
    """Its own short transaction: the provider call that follows must not hold the database
    (on SQLite every transaction holds the write lock)."""
    require_admin(principal)
    with session_scope() as session:
        row = repo.read_integration(
            session, organization_id=principal.organization_id, integration_id=integration_id
        )
        return repo.resolve_integration(
            session, organization_id=row.organization_id, name=row.name, provider=row.provider
        )


async def test_connection(integration: ResolvedIntegration) -> dict[str, Any]:
    """A real call to the provider; the outcome is recorded like a step's."""
    from orbin_flows.integrations.oauth import ensure_fresh

    try:
        integration = await ensure_fresh(integration)
        detail = await provider(integration.provider).test(integration)
    except ProviderError as exc:
        await asyncio.to_thread(record_call, integration, exc)
        return {"ok": False, "detail": exc.message}
    await asyncio.to_thread(record_call, integration, None)
    return {"ok": True, "detail": detail}


def record_call(integration: ResolvedIntegration, error: ProviderError | None) -> None:
    """A call's outcome on the integration (last use, last error, status): its own small
    transaction, so a failing step's record is kept whatever the step does next."""
    try:
        with session_scope() as session:
            if error is None:
                repo.record_success(
                    session,
                    organization_id=integration.organization_id,
                    integration_id=integration.id,
                )
            elif repo.record_failure(
                session,
                organization_id=integration.organization_id,
                integration_id=integration.id,
                message=error.message,
                fatal=error.credential,
            ):
                log.warning(
                    "integration %s (%s) is now in error: %s",
                    integration.name,
                    integration.provider,
                    error.message,
                )
    except Exception:  # noqa: BLE001 - bookkeeping must not fail the call it records
        log.exception("could not record a call of integration %s", integration.id)


async def sync_block(organization_id: str, integration_id: str) -> None:
    """The integration's Prefect block document, written after the API has answered (the
    Prefect server being slow or down must not fail a change that is already stored)."""
    import os

    from blocks.registry import save_document

    if not os.environ.get("PREFECT_API_URL"):  # no server to write to (never start one here)
        return
    from tenancy.orgs import read_organization

    try:
        with session_scope() as session:
            organization_slug = read_organization(session, organization_id).slug
            row = repo.read_integration(
                session, organization_id=organization_id, integration_id=integration_id
            )
            resolved = repo.resolve_integration(
                session, organization_id=organization_id, name=row.name, provider=row.provider
            )
        await asyncio.wait_for(
            save_document(
                organization_slug,
                resolved.name,
                resolved.provider,
                resolved.config,
                resolved.credentials,
            ),
            SYNC_TIMEOUT_SECONDS,
        )
        with session_scope() as session:
            repo.mark_synced(
                session, organization_id=organization_id, integration_id=integration_id
            )
    except Exception as exc:  # noqa: BLE001 - the block is a copy; the next change re-syncs
        log.warning(
            "could not save the Prefect block of integration %s: %s",
            integration_id,
            type(exc).__name__,
        )


async def drop_block(organization_slug: str, name: str, provider: str) -> None:
    import os

    from blocks.registry import delete_document

    if not os.environ.get("PREFECT_API_URL"):
        return
    try:
        await asyncio.wait_for(
            delete_document(organization_slug, name, provider), SYNC_TIMEOUT_SECONDS
        )
    except Exception as exc:  # noqa: BLE001
        log.warning("could not delete the Prefect block %s-%s: %s", organization_slug, name, exc)
