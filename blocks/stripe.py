"""Stripe: a secret (or restricted) key and an optional API base, stored as a Prefect Block;
``get_client()`` is a ``stripe.StripeClient``, as Orbin's steps use."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class OrbinStripe(Block):
    _block_type_name = "Orbin Stripe"
    _block_type_slug = "orbin-stripe"

    secret_key: SecretStr = Field(description="sk_... or rk_...")
    api_base: str = Field(default="https://api.stripe.com", description="Stripe API base URL")

    def get_client(self):  # -> stripe.StripeClient
        import stripe

        return stripe.StripeClient(
            self.secret_key.get_secret_value(), base_addresses={"api": self.api_base.rstrip("/")}
        )
