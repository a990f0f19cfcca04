"""The dashboard's session cookie: who signed in, until when, signed with Orbin's key.

The cookie is HttpOnly and carries no secret: a user id, its issue and expiry times and a tag
of the user's password hash, so changing the password ends every session of that user.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from tenancy.crypto import signing_key

COOKIE_NAME = "orbin_session"
MAX_AGE_SECONDS = 12 * 3600


@dataclass(frozen=True)
class SessionClaims:
    user_id: str
    issued_at: int
    expires_at: int
    password_tag: str


def password_tag(password_hash: str | None) -> str:
    return hashlib.sha256(f"orbin-session:{password_hash or ''}".encode()).hexdigest()[:16]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(body: str, key: bytes) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def issue(*, user_id: str, password_tag: str, now_ms: int, key: bytes | None = None) -> str:
    claims = {"u": user_id, "i": now_ms, "e": now_ms + MAX_AGE_SECONDS * 1000, "p": password_tag}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{body}.{_signature(body, key or signing_key())}"


def read(token: str | None, *, now_ms: int, key: bytes | None = None) -> SessionClaims | None:
    """The claims of a well-signed, unexpired token; None for anything else."""
    if not token or token.count(".") != 1 or len(token) > 1024:
        return None
    body, signature = token.split(".")
    if not hmac.compare_digest(signature, _signature(body, key or signing_key())):
        return None
    try:
        raw = json.loads(_unb64(body))
        claims = SessionClaims(str(raw["u"]), int(raw["i"]), int(raw["e"]), str(raw["p"]))
    except (ValueError, KeyError, TypeError):
        return None
    if claims.expires_at <= now_ms:
        return None
    return claims
