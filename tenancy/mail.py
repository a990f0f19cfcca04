"""Outgoing mail through a durable outbox.

``queue_mail`` stores the message in the caller's transaction (so a mail exists exactly when the
change that caused it was committed) and asks for delivery once that transaction commits.
Delivery sends through SMTP when ``ORBIN_SMTP_URL`` is set (``smtp://user:pass@host:port``,
``smtps://`` for TLS), otherwise writes RFC 822 ``.eml`` files into ``$ORBIN_HOME/outbox/``,
named by queue time so that they sort in the order they were queued. A failed delivery stays
pending and is retried by ``deliver_pending`` (at startup and on the next mail).
"""

from __future__ import annotations

import logging
import os
import smtplib
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tenancy.clock import now_ms
from tenancy.config import get_settings
from tenancy.db import session_scope
from tenancy.models import MailItem

log = logging.getLogger("orbin.mail")
_MAX_ATTEMPTS = 10
_lock = threading.Lock()


def sender() -> str:
    return os.environ.get("ORBIN_MAIL_FROM", "Orbin <no-reply@orbin.local>")


def queue_mail(
    session: Session,
    *,
    to: str,
    subject: str,
    text: str,
    organization_id: str | None = None,
) -> MailItem:
    """Store a message to send once the session's transaction commits."""
    item = MailItem(organization_id=organization_id, to_address=to, subject=subject, body=text)
    session.add(item)
    if not session.info.get("orbin_mail_hook"):
        session.info["orbin_mail_hook"] = True
        event.listen(session, "after_commit", _after_commit, once=True)
    return item


def _after_commit(session: Session) -> None:
    session.info.pop("orbin_mail_hook", None)
    if os.environ.get("ORBIN_SMTP_URL"):  # a network round trip: not in the caller's thread
        threading.Thread(target=_deliver_quietly, name="orbin-mail", daemon=True).start()
    else:  # files in the outbox folder: written before the caller goes on
        _deliver_quietly()


def _deliver_quietly() -> None:
    try:
        deliver_pending()
    except Exception:  # noqa: BLE001 - retried on the next mail or at startup
        log.exception("mail delivery failed; the messages stay queued")


def _message(item: MailItem) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender()
    msg["To"] = item.to_address
    msg["Subject"] = item.subject
    msg["Date"] = formatdate(item.queued_at / 1000, localtime=False)
    msg["Message-ID"] = make_msgid(idstring=str(item.id), domain="orbin.local")
    msg.set_content(item.body)
    return msg


def outbox_dir() -> Path:
    return get_settings().resolved_home / "outbox"


def _send(msg: EmailMessage, item: MailItem) -> None:
    url = os.environ.get("ORBIN_SMTP_URL")
    if not url:
        folder = outbox_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{item.queued_at:013d}-{item.id:012d}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(msg))
        tmp.replace(path)
        return
    parts = urlsplit(url)
    cls = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with cls(
        parts.hostname or "127.0.0.1",
        parts.port or (465 if cls is smtplib.SMTP_SSL else 25),
        timeout=10,
    ) as smtp:
        if parts.scheme == "smtp+starttls":
            smtp.starttls()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(msg)


def deliver_pending(limit: int = 100) -> int:
    """Send what is queued; returns how many were sent."""
    sent = 0
    with _lock, session_scope() as session:
        items = session.scalars(
            select(MailItem)
            .where(MailItem.sent_at.is_(None), MailItem.attempts < _MAX_ATTEMPTS)
            .order_by(MailItem.id)
            .limit(limit)
        ).all()
        for item in items:
            item.attempts += 1
            try:
                _send(_message(item), item)
            except Exception as exc:  # noqa: BLE001 - kept for the next attempt
                item.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("mail %s to %s not sent: %s", item.id, item.to_address, exc)
                continue
            item.sent_at = now_ms()
            item.last_error = None
            sent += 1
    return sent
