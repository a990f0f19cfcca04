"""A custom outbound webhook: URL plus a signing secret, stored as a Prefect Block."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from orbin_flows.signatures import orbin_header


class OrbinWebhook(Block):
    _block_type_name = "Orbin Webhook"
    _block_type_slug = "orbin-webhook"

    url: str = Field(description="Where events are POSTed")
    signing_secret: SecretStr = Field(description="HMAC-SHA256 key for the Orbin-Signature header")

    def signature_header(self, body: bytes, timestamp: int | None = None) -> str:
        """``t=<unix seconds>,v1=<hex hmac of "t.body">``, the scheme Orbin verifies inbound."""
        return orbin_header(self.signing_secret.get_secret_value(), body, timestamp)
