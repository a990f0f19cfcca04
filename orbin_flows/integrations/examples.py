"""A code flow that uses an organization's integration through its Prefect block, rolled out
with ``prefect deploy`` (deployment ``slack-code`` in prefect.yaml)."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, task

from blocks.slack import OrbinSlack


@task(name="Post to Slack")
async def post(block_name: str, channel: str, text: str) -> str:
    block = await OrbinSlack.aload(block_name)
    resp = await asyncio.to_thread(block.get_client().chat_postMessage, channel=channel, text=text)
    return str(resp["ts"])


@flow(name="slack-code", persist_result=False)
async def slack_code(data: dict[str, Any] | None = None) -> dict[str, Any]:
    """``data``: ``block`` (``<org-slug>-<integration name>``), ``channel``, ``text``."""
    data = data or {}
    ts = await post(data["block"], data.get("channel", "#general"), data.get("text", "hello"))
    return {"ts": ts}
