"""Encryption of secrets at rest (integration credentials, webhook secrets, MFA seeds).

Keys come from ``ORBIN_SECRET_KEY`` (comma-separated, newest first, so keys can be rotated),
or from a key file generated under ORBIN_HOME on first use.
"""

from __future__ import annotations

import os
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet

from tenancy.config import get_settings


def _load_keys() -> list[str]:
    settings = get_settings()
    if settings.secret_key is not None:
        return [k.strip() for k in settings.secret_key.get_secret_value().split(",") if k.strip()]
    path = settings.resolved_home / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(Fernet.generate_key().decode())
    return [path.read_text().strip()]


@lru_cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in _load_keys()])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key."""
    return _fernet().rotate(token.encode()).decode()


def signing_key() -> bytes:
    """A key for HMAC signatures (session cookies), derived from the newest encryption key."""
    import hashlib

    return hashlib.sha256(b"orbin-signing:" + _load_keys()[0].encode()).digest()


def reset() -> None:
    _fernet.cache_clear()
