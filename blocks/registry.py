"""An organization's integrations as Prefect block documents, so code flows rolled out with
``prefect deploy`` into its pool can ``Block.load`` them.

The document is named ``<org-slug>-<integration name>`` (lowercase, dashes). Orbin's own table
stays the source of truth (and keeps the credentials under Orbin's keys); the Prefect server
keeps its copy encrypted with its own key, as it does for every block's secret fields.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from prefect.blocks.core import Block

from blocks.github import OrbinGitHub
from blocks.salesforce import OrbinSalesforce
from blocks.slack import OrbinSlack
from blocks.stripe import OrbinStripe
from blocks.webhook import OrbinWebhook

BLOCK_TYPES: dict[str, type[Block]] = {
    "webhook": OrbinWebhook,
    "slack": OrbinSlack,
    "github": OrbinGitHub,
    "stripe": OrbinStripe,
    "salesforce": OrbinSalesforce,
}

_registered: set[str] = set()
_lock: asyncio.Lock | None = None


def _serial() -> asyncio.Lock:
    """One write at a time per process: concurrent first saves would race to register the
    same block schema, and the loser gets ObjectAlreadyExists."""
    global _lock
    if _lock is None:
        _lock = asyncio.Lock()
    return _lock


def document_name(organization_slug: str, integration_name: str) -> str:
    raw = f"{organization_slug}-{integration_name}".lower()
    return re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")


def block_for(provider: str, config: dict[str, Any], credentials: dict[str, Any]) -> Block:
    if provider == "webhook":
        return OrbinWebhook(url=config["url"], signing_secret=credentials["signingSecret"])
    if provider == "slack":
        kw = {"base_url": config["baseUrl"]} if config.get("baseUrl") else {}
        return OrbinSlack(bot_token=credentials["botToken"], **kw)
    if provider == "github":
        kw = {"base_url": config["baseUrl"]} if config.get("baseUrl") else {}
        return OrbinGitHub(token=credentials["token"], **kw)
    if provider == "stripe":
        kw = {"api_base": config["apiBase"]} if config.get("apiBase") else {}
        return OrbinStripe(secret_key=credentials["secretKey"], **kw)
    if provider == "salesforce":
        kw = {"api_version": config["apiVersion"]} if config.get("apiVersion") else {}
        return OrbinSalesforce(
            instance_url=config["instanceUrl"], access_token=credentials["accessToken"], **kw
        )
    raise KeyError(provider)


async def register_block_types() -> None:
    """Every Orbin block type and schema on the Prefect server (idempotent)."""
    for provider, cls in BLOCK_TYPES.items():
        if provider not in _registered:
            await cls.aregister_type_and_schema()
            _registered.add(provider)


async def save_document(
    organization_slug: str,
    integration_name: str,
    provider: str,
    config: dict[str, Any],
    credentials: dict[str, Any],
) -> str:
    from prefect.exceptions import ObjectAlreadyExists

    name = document_name(organization_slug, integration_name)
    async with _serial():
        await register_block_types()
        try:
            await block_for(provider, config, credentials).asave(name, overwrite=True)
        except ObjectAlreadyExists:  # another process registered or saved it meanwhile
            await block_for(provider, config, credentials).asave(name, overwrite=True)
    return name


async def delete_document(organization_slug: str, integration_name: str, provider: str) -> None:
    from prefect.exceptions import ObjectNotFound

    try:
        await BLOCK_TYPES[provider].adelete(document_name(organization_slug, integration_name))
    except (ObjectNotFound, ValueError):
        pass
