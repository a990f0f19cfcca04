"""Salesforce: an instance URL and an OAuth access token, stored as a Prefect Block;
``get_client()`` is a simple-salesforce client, as Orbin's steps use."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class OrbinSalesforce(Block):
    _block_type_name = "Orbin Salesforce"
    _block_type_slug = "orbin-salesforce"

    instance_url: str = Field(description="https://<domain>.my.salesforce.com")
    access_token: SecretStr = Field(description="An OAuth access token")
    api_version: str = Field(default="59.0")

    def get_client(self):  # -> simple_salesforce.Salesforce
        from simple_salesforce import Salesforce

        return Salesforce(
            instance_url=self.instance_url,
            session_id=self.access_token.get_secret_value(),
            version=self.api_version,
        )
