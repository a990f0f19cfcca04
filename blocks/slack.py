"""Slack: a bot token and an optional Web API base URL, stored as a Prefect Block.

A code flow in the organization's pool loads it by name (``OrbinSlack.load("<org>-<name>")``)
and gets the same ``slack_sdk`` client Orbin's steps use."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class OrbinSlack(Block):
    _block_type_name = "Orbin Slack"
    _block_type_slug = "orbin-slack"

    bot_token: SecretStr = Field(description="The bot's xoxb- token")
    base_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL")

    def get_client(self, timeout: int = 30):  # -> slack_sdk.WebClient
        from slack_sdk import WebClient

        url = self.base_url if self.base_url.endswith("/") else self.base_url + "/"
        return WebClient(token=self.bot_token.get_secret_value(), base_url=url, timeout=timeout)
