"""A custom outbound webhook: URL plus a signing secret, stored as a Prefect Block."""

from __future__ import annotations

import hashlib
import hmac
import time

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class OrbinWebhook(Block):
    _block_type_name = "Orbin Webhook"
    _block_type_slug = "orbin-webhook"

    url: str = Field(description="Where events are POSTed")
    signing_secret: SecretStr = Field(description="HMAC-SHA256 key for the Orbin-Signature header")

    def signature_header(self, body: bytes, timestamp: int | None = None) -> str:
        """``t=<unix seconds>,v1=<hex hmac of "t.body">``, the scheme Orbin verifies inbound."""
        ts = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new(
            self.signing_secret.get_secret_value().encode(),
            f"{ts}.".encode() + body,
            hashlib.sha256,
        ).hexdigest()
        return f"t={ts},v1={mac}"
