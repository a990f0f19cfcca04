"""What goes to the model is the minimum: secrets removed, long values cut."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

# Keys whose values are secrets whatever they hold.
SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)|secret|token|api[_-]?key|credential|private[_-]?key|"
    r"authorization|cookie|signature|access[_-]?key|session[_-]?id|(^|[_-])auth$|^x-api-key$",
    re.IGNORECASE,
)
# Values that look like secrets wherever they appear.
SECRET_VALUE = re.compile(
    r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9_\-]{8,}"  # Orbin and Stripe keys
    r"|\bsk-[A-Za-z0-9_\-]{16,}"  # OpenAI
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # JWT
    r"|(?i:\bbearer\s+)[A-Za-z0-9._~+/\-]{12,}=*"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"  # user:password@ in URLs
)


class Redactor:
    def __init__(self, known: Iterable[str] = (), max_chars: int = 2_000) -> None:
        self.known = sorted({k for k in known if k and len(k) >= 6}, key=len, reverse=True)
        self.max_chars = max_chars

    def text(self, value: str, *, limit: int | None = None) -> str:
        for secret in self.known:
            if secret in value:
                value = value.replace(secret, REDACTED)
        value = SECRET_VALUE.sub(REDACTED, value)
        cap = self.max_chars if limit is None else limit
        if len(value) > cap:
            value = value[:cap] + f"... [truncated {len(value) - cap} chars]"
        return value

    def data(self, value: Any, *, depth: int = 0) -> Any:
        if depth > 20:
            return "[too deep]"
        if isinstance(value, dict):
            return {
                str(k): REDACTED
                if SECRET_KEY.search(str(k)) and v not in (None, "")
                else self.data(v, depth=depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list):
            head = [self.data(v, depth=depth + 1) for v in value[:20]]
            return head + ([f"[{len(value) - 20} more items]"] if len(value) > 20 else [])
        if isinstance(value, str):
            return self.text(value)
        return value

    def bounded(self, value: Any) -> Any:
        """Redacted, and as a whole no longer than max_chars once serialized."""
        import json

        clean = self.data(value)
        raw = json.dumps(clean, default=str)
        if len(raw) <= self.max_chars:
            return clean
        return raw[: self.max_chars] + f"... [truncated {len(raw) - self.max_chars} chars]"
