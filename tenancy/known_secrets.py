"""The organization's secret values in plain text, read only to redact them from what leaves
the platform (AI prompts). Never returned over the API, never logged."""

from __future__ import annotations

import contextlib
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenancy import crypto
from tenancy.models import Workflow
from tenancy.webhook_secrets import derive_workflow_secret, root_secrets


def _plain(enc: str | None) -> list[str]:
    if not enc:
        return []
    try:
        value = crypto.decrypt(enc)
    except Exception:  # noqa: BLE001 - an undecryptable value cannot leak either
        return []
    out = [value]
    with contextlib.suppress(ValueError, TypeError):
        data = json.loads(value)
        if isinstance(data, dict):
            out.extend(str(v) for v in data.values() if isinstance(v, str | int) and v != "")
    return out


def read_known_secrets(
    session: Session, *, organization_id: str, workflow_ids: list[str] | None = None
) -> list[str]:
    """Webhook roots and the secrets derived from them, provider-issued webhook secrets and
    integration credentials: every value at least 6 characters long, longest first."""
    found: list[str] = []
    roots = root_secrets(session, organization_id=organization_id)
    found.extend(roots)
    wf_q = select(Workflow.id, Workflow.webhook_secret_enc).where(
        Workflow.organization_id == organization_id
    )
    if workflow_ids is not None:
        wf_q = wf_q.where(Workflow.id.in_(workflow_ids))
    for wf_id, enc in session.execute(wf_q):
        found.extend(_plain(enc))
        found.extend(derive_workflow_secret(r, wf_id) for r in roots)
    from tenancy.integrations import secret_values  # each credential field's value

    found.extend(secret_values(session, organization_id))
    return sorted({s for s in found if len(s) >= 6}, key=len, reverse=True)
