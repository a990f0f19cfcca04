"""Webhook triggers: each workflow whose trigger is ``{"type": "webhook"}`` has its own URL,
``POST /v1/hooks/<workflow id>``, and its own signing secret (see tenancy/webhook_secrets.py).

The trigger's ``config.provider`` picks the signature scheme and how the delivery becomes an
event: ``orbin`` (default), ``github``, ``stripe`` or ``slack`` (see orbin_flows/signatures.py).
A verified delivery is stored as an event (source = provider) addressed to that workflow, and
starts one run of it (trigger type ``webhook``), in one transaction, like ``POST /v1/events``.
A delivery the workflow cannot take (paused, monthly limit reached) is kept as a dead letter.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from orbin_flows import signatures
from orbin_flows.event_runs import event_trigger_data, fail_event, start_runs
from orbin_flows.ingest_results import stored_result
from tenancy import events as events_repo
from tenancy import webhook_secrets as secrets_repo
from tenancy import workflows as workflows_repo
from tenancy.audit import record_audit
from tenancy.db import Session
from tenancy.errors import InvalidInput, LimitExceeded, NotFound, OrbinError, Unauthenticated
from tenancy.orgs import find_organization
from tenancy.principal import Principal, require_admin
from tenancy.workflows import Workflow

_TYPE_CHARS = re.compile(r"[^A-Za-z0-9_.:\-/]")
MAX_GRACE_SECONDS = 7 * 24 * 3600


def provider_of(workflow: Workflow) -> str:
    return str((workflow.trigger.get("config") or {}).get("provider") or "orbin")


def hook_path(workflow_id: str) -> str:
    return f"/v1/hooks/{workflow_id}"


# --- receiving ------------------------------------------------------------------------


@dataclass
class Delivery:
    event_type: str
    data: dict[str, Any]
    key: str | None
    reply: dict[str, Any] | None = None  # answered as is; nothing is stored


@dataclass
class WebhookResult:
    answer: dict[str, Any]
    status_code: int = 202
    failure: OrbinError | None = None
    run_ids: list[str] = field(default_factory=list)


def _event_type(prefix: str, name: Any) -> str:
    clean = _TYPE_CHARS.sub("_", str(name or "event"))
    return f"{prefix}.{clean}"[:200]


def _parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    """A JSON object, or a form (Slack commands and actions, GitHub's form deliveries)."""
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise InvalidInput("the body is not UTF-8 text") from exc
    if content_type == "application/x-www-form-urlencoded":
        form = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text, True).items()}
        if isinstance(form.get("payload"), str):
            try:
                return _as_object(json.loads(form["payload"]))
            except ValueError:
                pass
        return form
    if not text.strip():
        return {}
    try:
        return _as_object(json.loads(text))
    except ValueError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from exc


def _as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"body": value}


def _orbin_delivery(
    wf: Workflow, headers: Mapping[str, str], data: dict[str, Any], signature: str
) -> Delivery:
    # Keyed on the signature itself: x-idempotency-key / webhook-id are not signed, and a
    # replay with a new one must not start a new run.
    key = f"sig:{signature}"
    etype = data.get("type")
    if isinstance(etype, str) and isinstance(data.get("data"), dict) and etype:
        # An Orbin-shaped event ({"type", "data"}): kept as such.
        return Delivery(_TYPE_CHARS.sub("_", etype)[:200], data["data"], key)
    return Delivery(f"webhook.{wf.slug}", data, key)


def _github_delivery(headers: Mapping[str, str], data: dict[str, Any], signature: str) -> Delivery:
    name = headers.get("x-github-event") or "event"
    if name == "ping":
        return Delivery("github.ping", data, None, reply={"received": True, "ping": "pong"})
    action = data.get("action")
    etype = _event_type("github", name)
    if isinstance(action, str):
        etype = f"{etype}.{_TYPE_CHARS.sub('_', action)}"[:200]
    return Delivery(etype, data, f"sig:{signature}")  # X-GitHub-Delivery is not signed


def _slack_delivery(data: dict[str, Any], signature: str) -> Delivery:
    kind = data.get("type")
    if kind == "url_verification":
        return Delivery("slack.url_verification", data, None, {"challenge": data.get("challenge")})
    if kind == "event_callback" and isinstance(data.get("event"), dict):
        return Delivery(
            _event_type("slack", data["event"].get("type")),
            data,
            data.get("event_id") or f"sig:{signature}",
        )
    if "command" in data:  # a slash command (form-encoded)
        return Delivery("slack.command", data, f"sig:{signature}")
    return Delivery(_event_type("slack", kind), data, f"sig:{signature}")


def _verify(
    wf: Workflow, provider: str, headers: Mapping[str, str], body: bytes, secrets: list[str]
) -> Delivery:
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if provider == "stripe":
        event = signatures.verify_stripe(headers, body, secrets).to_dict()
        # An event without an id: the signed timestamp and body name the delivery.
        key = (
            event.get("id")
            or "sig:"
            + hashlib.sha256(
                f"{signatures.stripe_timestamp(headers['stripe-signature'])}.".encode() + body
            ).hexdigest()
        )
        return Delivery(_event_type("stripe", event.get("type")), event, key)
    if provider == "github":
        sig = signatures.verify_github(headers, body, secrets)
        return _github_delivery(headers, _parse_body(body, ctype), sig)
    if provider == "slack":
        sig = signatures.verify_slack(headers, body, secrets)
        return _slack_delivery(_parse_body(body, ctype), sig)
    sig = signatures.verify_orbin(headers, body, secrets)
    return _orbin_delivery(wf, headers, _parse_body(body, ctype), sig)


def receive_webhook(
    session: Session, *, workflow_id: str, headers: Mapping[str, str], body: bytes
) -> WebhookResult:
    """Verify, store the event, start the run. ``headers`` with lowercase names."""
    wf = secrets_repo.read_webhook_workflow(session, workflow_id=workflow_id)
    provider = provider_of(wf)
    verification = secrets_repo.verification_secrets(session, workflow=wf)
    if not verification.secrets:
        raise Unauthenticated(
            "this webhook has no secret yet: read it with GET /v1/workflows/<id>/webhook"
        )
    delivery = _verify(wf, provider, headers, body, verification.secrets)
    if delivery.reply is not None:
        return WebhookResult(delivery.reply, 200)
    key = f"{provider}:{wf.id}:{delivery.key}"[:200] if delivery.key else None
    event, created = events_repo.insert_event(
        session,
        organization_id=wf.organization_id,
        event_type=delivery.event_type,
        source=provider,
        payload=delivery.data,
        event_id=key,
        workflow_id=wf.id,
    )
    if not created:  # a replayed delivery: the original answer, nothing new starts
        return WebhookResult(stored_result(event, duplicate=True).answer())
    run_ids: list[str] = []
    failure: OrbinError | None = None
    if wf.status != "active":
        fail_event(
            session,
            event=event,
            reason=f"workflow {wf.slug!r} is {wf.status}: nothing started; "
            "retry this event once the workflow is active",
        )
    else:
        try:
            run_ids = start_runs(
                session,
                event=event,
                workflows=[wf],
                trigger_type="webhook",
                trigger_data=event_trigger_data(event, workflowId=wf.id),
            )
        except LimitExceeded as exc:
            failure = exc
            fail_event(session, event=event, reason=exc.message)
    events_repo.set_event_runs(session, event=event, run_ids=run_ids)
    return WebhookResult(stored_result(event, duplicate=False).answer(), 202, failure, run_ids)


# --- managing -------------------------------------------------------------------------


def _webhook_workflow(session: Session, principal: Principal, workflow_id: str) -> Workflow:
    wf = workflows_repo.read_workflow(
        session, organization_id=principal.organization_id, workflow_id=workflow_id
    )
    if wf.trigger_type != "webhook":
        raise NotFound(
            f"workflow {wf.slug!r} has no webhook trigger (its trigger is {wf.trigger_type})"
        )
    return wf


def webhook_info(
    session: Session, principal: Principal, workflow_id: str, *, base_url: str
) -> dict[str, Any]:
    """The workflow's URL, scheme and secret (revealed to those who may change workflows)."""
    principal.require("workflows:write")
    wf = _webhook_workflow(session, principal, workflow_id)
    provider = provider_of(wf)
    org = find_organization(session, wf.organization_id)
    info: dict[str, Any] = {
        "workflowId": wf.id,
        "url": base_url.rstrip("/") + hook_path(wf.id),
        "provider": provider,
        "active": wf.status == "active",
    }
    if wf.webhook_secret_enc:
        info.update(secret=None, secretSource="provider")
    else:
        root = secrets_repo.ensure_root_secret(session, organization_id=wf.organization_id)
        info.update(
            secret=secrets_repo.derive_workflow_secret(root, wf.id),
            secretSource="organization",
            previousSecretValidUntil=org.webhook_secret_prev_until if org else None,
        )
    return info


def set_provider_secret(
    session: Session, principal: Principal, workflow_id: str, secret: str | None
) -> None:
    """Verify with the provider's own secret (Stripe, Slack issue theirs); None: back to
    the secret derived from the organization's."""
    principal.require("workflows:write")
    wf = _webhook_workflow(session, principal, workflow_id)
    if secret is not None and not (8 <= len(secret) <= 500):
        raise InvalidInput("the secret must be 8 to 500 characters", details=[{"field": "secret"}])
    secrets_repo.set_provider_secret(session, workflow=wf, secret=secret)
    record_audit(
        session,
        principal,
        "workflow.webhook_secret_set" if secret else "workflow.webhook_secret_cleared",
        "workflow",
        wf.id,
    )


def rotate_webhook_secret(
    session: Session, principal: Principal, *, grace_seconds: int
) -> dict[str, Any]:
    """A new root secret for the organization, shown once; the old one verifies during the
    grace period. Every workflow's derived secret changes with it."""
    require_admin(principal)
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidInput(
            f"graceSeconds must be 0 to {MAX_GRACE_SECONDS}", details=[{"field": "graceSeconds"}]
        )
    new, until = secrets_repo.rotate_root_secret(
        session, organization_id=principal.organization_id, grace_ms=grace_seconds * 1000
    )
    record_audit(
        session,
        principal,
        "webhook_secret.rotated",
        "organization",
        principal.organization_id,
        {"previousValidUntil": until},
    )
    return {"secret": new, "previousSecretValidUntil": until}
