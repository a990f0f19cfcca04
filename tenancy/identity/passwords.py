"""The one password policy and hashing (argon2) of every way an account gets a password:
sign-up, invitations, resets, the CLI, the demo seed."""

from __future__ import annotations

from argon2 import PasswordHasher

from tenancy.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 1024
_hasher = PasswordHasher()


def check_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"password must have at least {MIN_LENGTH} characters",
            details=[{"field": "password", "message": f"at least {MIN_LENGTH} characters"}],
        )
    if len(password) > MAX_LENGTH:
        raise InvalidInput(
            f"password is longer than {MAX_LENGTH} characters",
            details=[{"field": "password", "message": f"at most {MAX_LENGTH} characters"}],
        )
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not there is a hash: no account enumeration by timing."""
    if not password_hash:
        _hasher.hash("timing equaliser")
        return False
    try:
        return bool(_hasher.verify(password_hash, password))
    except Exception:  # noqa: BLE001 - argon2's mismatch and malformed-hash errors alike
        return False
