"""Integrations: the organization's connections, connect (a credentials form built from each
provider's own fields, or an OAuth authorize link where the operator set the provider's app
up), test with a real provider call, disconnect. The use cases are the API's
(``orbin_flows.integrations``): admins only, credentials encrypted, never read back here."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from orbin_flows.integrations import oauth
from orbin_flows.integrations import service as cases
from orbin_flows.integrations.providers import PROVIDERS
from streamlit_app.services.base import Actor, Outcome, act, attempt, principal_of, read
from tenancy import org_queries as q
from tenancy.errors import InvalidInput

log = logging.getLogger("orbin.dashboard")

IntegrationRow = q.IntegrationRow
OAUTH_MANAGED = {"refreshToken", "expiresAt"}  # set by an OAuth connection, never typed
DESCRIPTIONS = {
    "slack": "Post messages to channels",
    "github": "Issues and workflow dispatches",
    "salesforce": "CRM records and queries",
    "stripe": "Customers and invoice items",
    "webhook": "Any HTTP endpoint, signed",
}


@dataclass(frozen=True)
class Field:
    name: str
    required: bool
    secret: bool


@dataclass(frozen=True)
class ProviderForm:
    name: str
    description: str
    fields: list[Field]
    oauth: bool  # the operator configured this provider's OAuth app


def _fields(model: Any, *, secret: bool) -> list[Field]:
    return [
        Field(name, info.is_required(), secret)
        for name, info in model.model_fields.items()
        if name not in OAUTH_MANAGED
    ]


def _oauth_ready(provider: str) -> bool:
    try:
        oauth.app_for(provider)
    except InvalidInput:
        return False
    return True


def providers() -> list[ProviderForm]:
    return [
        ProviderForm(
            p.name,
            DESCRIPTIONS.get(p.name, ""),
            _fields(p.config, secret=False) + _fields(p.credentials, secret=True),
            _oauth_ready(p.name),
        )
        for p in PROVIDERS.values()
    ]


def integrations(organization_id: str) -> list[IntegrationRow]:
    return read(lambda s: q.read_integration_list(s, organization_id=organization_id))


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    """The Prefect block copy is written after the change, as the API does after answering."""
    threading.Thread(target=asyncio.run, args=(work,), daemon=True).start()


def connect(actor: Actor, provider: str, name: str, values: dict[str, str]) -> Outcome:
    """``values``: the form's fields by name; blanks are left out, so the provider's own
    validation names what is missing."""
    form = next((p for p in providers() if p.name == provider), None)
    if form is None:
        return Outcome(False, f"unknown provider {provider!r}")
    body: dict[str, Any] = {"provider": provider, "name": name.strip(), "config": {}}
    body["credentials"] = {}
    for f in form.fields:
        value = (values.get(f.name) or "").strip()
        if value:
            body["credentials" if f.secret else "config"][f.name] = value
    outcome = act(
        actor, f"{name.strip()} connected.", lambda s, p: cases.create_integration(s, p, body).id
    )
    if outcome.ok:
        _in_background(cases.sync_block(actor.organization_id, outcome.value))
    return outcome


def oauth_start(actor: Actor, provider: str, name: str) -> Outcome:
    """The provider's authorize URL; the provider sends the user back to the API's callback."""
    return attempt(
        "Continue at the provider.", lambda: oauth.start(principal_of(actor), provider, name)
    )


def test(actor: Actor, integration_id: str) -> Outcome:
    """A real call to the provider, with no transaction held meanwhile; its outcome is
    recorded on the integration (last use, status) as a step's would be."""

    def go() -> dict[str, Any]:
        resolved = cases.resolve_for_test(principal_of(actor), integration_id)
        return asyncio.run(cases.test_connection(resolved))

    return attempt("Tested.", go)


def disconnect(actor: Actor, integration_id: str) -> Outcome:
    def go(session, principal):  # type: ignore[no-untyped-def]
        row = cases.read_integration(session, principal, integration_id)
        cases.delete_integration(session, principal, integration_id)
        return row.name, row.provider

    outcome = act(actor, "Disconnected.", go)
    if outcome.ok:
        slug = principal_of(actor).organization_slug
        _in_background(cases.drop_block(slug, *outcome.value))
    return outcome
