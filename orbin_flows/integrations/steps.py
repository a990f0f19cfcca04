"""What every integration step does around its provider call: find the integration in the
step's organization, honour the provider's rate-limit waits, record the outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from orbin_flows.actions.base import FatalStepError, RetryableStepError, StepContext
from orbin_flows.integrations.errors import ProviderError
from orbin_flows.integrations.oauth import ensure_fresh
from orbin_flows.integrations.service import record_call
from tenancy import integrations as repo
from tenancy.db import session_scope
from tenancy.errors import NotFound
from tenancy.integrations import ResolvedIntegration

T = TypeVar("T")

# A rate-limited call waits the provider's Retry-After in the attempt when it is this short
# (at most this many times); a longer wait becomes the step's own retry.
INLINE_WAIT_SECONDS = 30.0
INLINE_RETRIES = 3


def _resolve(organization_id: str, name: str, provider: str) -> ResolvedIntegration:
    with session_scope() as session:
        return repo.resolve_integration(
            session, organization_id=organization_id, name=name, provider=provider
        )


async def call(
    ctx: StepContext,
    name: str,
    provider: str,
    fn: Callable[[ResolvedIntegration], Awaitable[T]],
) -> T:
    try:
        integration = await asyncio.to_thread(_resolve, ctx.organization_id, name, provider)
    except NotFound as exc:
        raise FatalStepError(exc.message) from exc
    try:
        integration = await ensure_fresh(integration)
    except ProviderError as exc:
        await asyncio.to_thread(record_call, integration, exc)
        raise FatalStepError(exc.message) from None
    for tries in range(INLINE_RETRIES + 1):
        try:
            result = await fn(integration)
        except ProviderError as exc:
            wait = exc.retry_after
            if exc.retryable and wait is not None and wait <= INLINE_WAIT_SECONDS:
                if tries < INLINE_RETRIES:
                    await asyncio.sleep(wait)
                    continue
            await asyncio.to_thread(record_call, integration, exc)
            if exc.retryable:
                raise RetryableStepError(exc.message) from None
            raise FatalStepError(exc.message) from None
        await asyncio.to_thread(record_call, integration, None)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def threaded(fn: Callable[..., T], **kwargs: Any) -> Callable[[ResolvedIntegration], Awaitable[T]]:
    """A synchronous SDK call (slack_sdk, PyGithub) run in a thread."""

    async def run(integration: ResolvedIntegration) -> T:
        return await asyncio.to_thread(fn, integration, **kwargs)

    return run
