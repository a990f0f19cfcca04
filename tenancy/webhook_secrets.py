"""Webhook signing secrets: one root secret per organization, one secret per workflow.

Each workflow with a webhook trigger verifies with its own secret, derived from the
organization's root secret: ``whsec_`` + base64url(HMAC-SHA256(root, "orbin-webhook:v1:" +
workflow id)). Knowing one workflow's secret tells nothing of another's or of the root; the
root (shown once, when rotated) lets its holder compute any of them. Rotating the root
rotates every derived secret at once; during the grace period the previous root's derived
secrets verify too.

A provider that issues its own signing secret (Stripe's ``whsec_...``, Slack's signing secret)
is given it per workflow (``set_provider_secret``); that secret replaces the derived one for
that workflow and is rotated at the provider (Stripe signs with both secrets while it rolls).
All secrets are encrypted at rest with tenancy.crypto.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tenancy import crypto
from tenancy.clock import now_ms
from tenancy.errors import NotFound
from tenancy.models import Organization, Workflow

DEFAULT_GRACE_MS = 24 * 3600 * 1000


def derive_workflow_secret(root: str, workflow_id: str) -> str:
    mac = hmac.new(root.encode(), f"orbin-webhook:v1:{workflow_id}".encode(), hashlib.sha256)
    return "whsec_" + base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def _organization(session: Session, organization_id: str) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"organization {organization_id} not found")
    return org


def ensure_root_secret(session: Session, *, organization_id: str) -> str:
    """The organization's current root secret, created on first use (one winner if racing)."""
    org = _organization(session, organization_id)
    if org.webhook_secret_enc is None:
        session.execute(
            update(Organization)
            .where(Organization.id == organization_id, Organization.webhook_secret_enc.is_(None))
            .values(webhook_secret_enc=crypto.encrypt(secrets.token_urlsafe(32)))
        )
        session.refresh(org)
    assert org.webhook_secret_enc is not None
    return crypto.decrypt(org.webhook_secret_enc)


def rotate_root_secret(
    session: Session, *, organization_id: str, grace_ms: int = DEFAULT_GRACE_MS
) -> tuple[str, int | None]:
    """A new root secret; the current one keeps verifying for ``grace_ms``.

    Returns (new secret, end of the grace period or None). A secret rotated out before, still
    in its grace period, stops verifying now: only the newest previous secret is kept.
    """
    org = _organization(session, organization_id)
    new = secrets.token_urlsafe(32)
    until = now_ms() + grace_ms if org.webhook_secret_enc and grace_ms > 0 else None
    org.webhook_secret_prev_enc = org.webhook_secret_enc if until else None
    org.webhook_secret_prev_until = until
    org.webhook_secret_enc = crypto.encrypt(new)
    session.flush()
    return new, until


def root_secrets(session: Session, *, organization_id: str, now: int | None = None) -> list[str]:
    """The roots that verify now: the current one, then the previous one within its grace."""
    row = session.execute(
        select(
            Organization.webhook_secret_enc,
            Organization.webhook_secret_prev_enc,
            Organization.webhook_secret_prev_until,
        ).where(Organization.id == organization_id)
    ).first()
    if row is None:
        return []
    current, prev, until = row
    out = [crypto.decrypt(current)] if current else []
    if prev and until and (now if now is not None else now_ms()) < until:
        out.append(crypto.decrypt(prev))
    return out


def set_provider_secret(session: Session, *, workflow: Workflow, secret: str | None) -> None:
    workflow.webhook_secret_enc = crypto.encrypt(secret) if secret else None
    session.flush()


@dataclass(frozen=True)
class VerificationSecrets:
    secrets: list[str]
    provider_issued: bool


def verification_secrets(
    session: Session, *, workflow: Workflow, now: int | None = None
) -> VerificationSecrets:
    if workflow.webhook_secret_enc:
        return VerificationSecrets([crypto.decrypt(workflow.webhook_secret_enc)], True)
    roots = root_secrets(session, organization_id=workflow.organization_id, now=now)
    return VerificationSecrets([derive_workflow_secret(r, workflow.id) for r in roots], False)


def read_webhook_workflow(session: Session, *, workflow_id: str) -> Workflow:
    """The workflow a webhook URL names. Not tenant-scoped: the URL is the only address the
    sender has, and the signature, checked next, is what proves it may call it."""
    wf = session.scalars(
        select(Workflow).where(
            Workflow.id == workflow_id,
            Workflow.trigger_type == "webhook",
            Workflow.status.not_in(("archived", "deleted")),
        )
    ).first()
    if wf is None:
        raise NotFound("no webhook at this address")
    return wf
