"""Billing's e-mail: through the platform's mail outbox (``tenancy.mail``), stored with the
change that caused it and sent (SMTP, or ``.eml`` files in ``$ORBIN_HOME/outbox/``) after the
commit, so a rolled-back notice sends nothing."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tenancy.mail import outbox_dir, queue_mail

__all__ = ["outbox_dir", "queue_billing_mail"]


def queue_billing_mail(
    session: Session, *, to: list[str], subject: str, text: str, organization_id: str | None = None
) -> None:
    for address in dict.fromkeys(to):
        queue_mail(session, to=address, subject=subject, text=text, organization_id=organization_id)
