"""``http``: one HTTP request. 5xx, 429 and timeouts are retried; other unexpected codes fail."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
from pydantic import Field

from orbin_flows.actions.base import (
    Action,
    ActionConfig,
    FatalStepError,
    RetryableStepError,
    StepContext,
    register,
)
from tenancy import egress

_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    """Every request and every redirect passes the egress policy (tenancy.egress)."""
    global _client
    if _client is None:
        _client = egress.async_client(follow_redirects=True)
    return _client


MAX_RESPONSE_BYTES = 5 * 1024 * 1024


async def _request(config: HttpConfig, kwargs: dict[str, Any]) -> tuple[httpx.Response, bytes]:
    """The answer, read up to MAX_RESPONSE_BYTES: the output is stored with the run."""
    async with client().stream(config.method, config.url, timeout=config.timeout, **kwargs) as resp:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise FatalStepError(
                    f"{config.method} {config.url} answered more than {MAX_RESPONSE_BYTES} bytes"
                )
            chunks.append(chunk)
        return resp, b"".join(chunks)


class HttpConfig(ActionConfig):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    body: Any = None
    expect_status: list[int] | None = Field(default=None, alias="expectStatus")
    timeout: float = Field(default=30.0, gt=0, le=600)


@register
class Http(Action):
    name = "http"
    Config = HttpConfig

    async def run(self, config: HttpConfig, ctx: StepContext) -> Any:
        if not config.url.startswith(("http://", "https://")):
            raise FatalStepError(f"url must start with http:// or https://: {config.url!r}")
        kwargs: dict[str, Any] = {"headers": config.headers, "params": config.query or None}
        if config.body is not None:
            if isinstance(config.body, (dict, list)):
                kwargs["json"] = config.body
            else:
                kwargs["content"] = str(config.body)
        try:
            resp, content = await _request(config, kwargs)
        except egress.EgressRefused as exc:
            raise FatalStepError(f"{config.method} {config.url}: {exc.message}") from exc
        except httpx.TimeoutException as exc:
            raise RetryableStepError(
                f"{config.method} {config.url} timed out after {config.timeout}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise RetryableStepError(f"{config.method} {config.url} failed: {exc}") from exc
        body: Any
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = content.decode(resp.encoding or "utf-8", errors="replace")
        output = {"status": resp.status_code, "headers": dict(resp.headers), "body": body}
        expected = config.expect_status
        ok = resp.status_code in expected if expected else 200 <= resp.status_code < 300
        if ok:
            return output
        message = f"{config.method} {config.url} answered {resp.status_code}"
        if resp.status_code >= 500 or resp.status_code == 429:
            raise RetryableStepError(message)
        raise FatalStepError(message)
