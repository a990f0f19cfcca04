"""Rate limits per API key and per organization, with the figures of the plan table.

Every request that presents an API key to ``/v1/...`` or ``/api/webhooks/ingest`` counts once
against its key's limit, then its organization's (a key over its limit does not use up the
organization's budget), in a sliding window of one minute (the weighted two-window counter of
the ``limits`` library, as Upstash's ``slidingWindow``). Counters live in Redis when
``ORBIN_REDIS_URL`` is set, so that every API replica shares them, in this process otherwise.

If Redis stops answering, counting goes on in memory (a warning is logged once per outage) and
Redis is tried again a few seconds later: a rate limiter must never turn a request into a 5xx.

Answers carry ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` (of the tighter of the two
limits) and ``X-RateLimit-Reset`` (Unix time, seconds, when one more request is allowed); a
refused request is a 429 with ``Retry-After`` (seconds) and the usual error body.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter as MemoryLimiter
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest_api.auth import api_key_of, authenticate, org_of
from ingest_api.errors import error_body
from tenancy.config import get_settings
from tenancy.errors import NotFound, OrbinError, Unauthenticated
from tenancy.keys import cached_principal
from tenancy.plans import get_plan
from tenancy.principal import Principal

log = logging.getLogger("orbin.ratelimit")

_REDIS_RETRY_SECONDS = 5.0
_REDIS_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    scope: str  # "key" or "organization": the limit these figures are about
    limit: int
    remaining: int
    reset: float  # Unix time, seconds

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(max(0, self.remaining)).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.reset)).encode()),
        ]

    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset - time.time()))


def _redis_storage(url: str) -> Storage:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return RedisStorage(
        "async+" + url,
        implementation="redispy",
        key_prefix="orbin-rl",
        wrap_exceptions=True,
        socket_timeout=_REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


class RateLimiter:
    """Counts requests in Redis (when configured) or memory; falls back to memory on failure."""

    def __init__(self, redis_url: str | None) -> None:
        self.redis_url = redis_url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._redis: SlidingWindowCounterRateLimiter | None = None
        # In memory: the synchronous storage (thread-safe, no await: a third of the cost).
        self._memory = MemoryLimiter(MemoryStorage())
        self.redis_down_until = 0.0

    def _bind(self) -> None:
        # The Redis client holds connections of one event loop.
        loop = asyncio.get_running_loop()
        if self._loop is not loop and self.redis_url:
            self._loop = loop
            self._redis = SlidingWindowCounterRateLimiter(_redis_storage(self.redis_url))

    @property
    def using_redis(self) -> bool:
        return self._redis is not None and time.monotonic() >= self.redis_down_until

    async def check(self, principal: Principal) -> Verdict:
        plan = get_plan(principal.plan)
        limits = [("organization", plan.requests_per_minute_per_org, principal.organization_id)]
        if principal.key_id:
            limits.insert(0, ("key", plan.requests_per_minute_per_key, principal.key_id))
        elif principal.user_id:
            limits.insert(0, ("user", plan.requests_per_minute_per_key, principal.user_id))
        return await self._check(limits)

    async def check_bad_key(self, address: str) -> Verdict:
        """Requests with a key that does not authenticate, counted per client address (key
        guessing, or a client stuck with a revoked key, costs a database lookup each)."""
        limit = get_settings().bad_key_requests_per_minute
        return await self._check([("address", limit, address)])

    async def _check(self, limits: list[tuple[str, int, str]]) -> Verdict:
        self._bind()
        if self._redis is not None and self.using_redis:
            try:
                verdict = await self._count(self._redis, limits)
            except Exception as exc:  # noqa: BLE001 - any storage failure: count in memory
                if self.redis_down_until == 0.0:
                    log.warning(
                        "Redis rate-limit storage failed (%s: %s); counting in memory until "
                        "it answers again",
                        exc.__class__.__name__,
                        exc,
                    )
                self.redis_down_until = time.monotonic() + _REDIS_RETRY_SECONDS
            else:
                if self.redis_down_until:
                    log.warning("Redis rate-limit storage answers again")
                    self.redis_down_until = 0.0
                return verdict
        return self._count_in_memory(limits)

    def _count_in_memory(self, limits: list[tuple[str, int, str]]) -> Verdict:
        items = _items(limits)
        for scope, item, ident in items:
            if not self._memory.hit(item, scope, ident):
                stats = self._memory.get_window_stats(item, scope, ident)
                return Verdict(False, scope, item.amount, 0, stats.reset_time)
        verdicts = []
        for scope, item, ident in items:
            stats = self._memory.get_window_stats(item, scope, ident)
            verdicts.append(Verdict(True, scope, item.amount, stats.remaining, stats.reset_time))
        return min(verdicts, key=lambda v: v.remaining)

    @staticmethod
    async def _count(
        strategy: SlidingWindowCounterRateLimiter, limits: list[tuple[str, int, str]]
    ) -> Verdict:
        items = _items(limits)
        for scope, item, ident in items:
            if not await strategy.hit(item, scope, ident):
                stats = await strategy.get_window_stats(item, scope, ident)
                return Verdict(False, scope, item.amount, 0, stats.reset_time)
        all_stats = await asyncio.gather(
            *(strategy.get_window_stats(item, scope, ident) for scope, item, ident in items)
        )
        verdicts = [
            Verdict(True, scope, item.amount, stats.remaining, stats.reset_time)
            for (scope, item, _), stats in zip(items, all_stats, strict=True)
        ]
        return min(verdicts, key=lambda v: v.remaining)


def _items(limits: list[tuple[str, int, str]]) -> list[tuple[str, RateLimitItem, str]]:
    return [(scope, _per_minute(n), ident) for scope, n, ident in limits]


_per_minute_items: dict[int, RateLimitItem] = {}


def _per_minute(n: int) -> RateLimitItem:
    item = _per_minute_items.get(n)
    if item is None:
        item = _per_minute_items.setdefault(n, RateLimitItemPerMinute(n))
    return item


def _applies(path: str) -> bool:
    return path.startswith("/v1/") or path == "/v1" or path == "/api/webhooks/ingest"


class RateLimitMiddleware:
    """Authenticates the API key once, counts the request, adds the headers to the answer.

    The principal (or the authentication error) is left in ``request.state`` for the routes.
    A request without a key, or with a bad one, passes untouched: its route answers 401.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.limiter = limiter or RateLimiter(get_settings().redis_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _applies(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = api_key_of(scope["headers"])
        if not key:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        principal = cached_principal(key)
        if principal is None:
            try:
                principal = await run_in_threadpool(authenticate, key, org_of(scope["headers"]))
            except (Unauthenticated, NotFound) as exc:
                state["auth_error"] = exc
            except Exception:  # noqa: BLE001 - e.g. the database is down: the route decides
                log.debug("authentication failed before rate limiting", exc_info=True)
        if principal is None:
            if "auth_error" in state and not await self._bad_key_allowed(scope, send):
                return
            await self.app(scope, receive, send)
            return
        state["principal"] = principal
        try:
            verdict = await self.limiter.check(principal)
        except Exception:  # noqa: BLE001 - never a 5xx because of the limiter
            log.exception("rate limiting failed; request let through")
            await self.app(scope, receive, send)
            return
        headers = verdict.headers()
        if not verdict.allowed:
            await _refuse(send, verdict, headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _bad_key_allowed(self, scope: Scope, send: Send) -> bool:
        """False (and answered 429) once this address sent too many bad keys."""
        address = (scope.get("client") or ("unknown",))[0]
        try:
            verdict = await self.limiter.check_bad_key(str(address))
        except Exception:  # noqa: BLE001 - never a 5xx because of the limiter
            log.exception("rate limiting failed; request let through")
            return True
        if not verdict.allowed:
            await _refuse(send, verdict, verdict.headers())
        return verdict.allowed


async def _refuse(send: Send, verdict: Verdict, headers: list[tuple[bytes, bytes]]) -> None:
    retry = verdict.retry_after()
    who = {"key": "API key", "address": "client address with a bad key"}.get(
        verdict.scope, "organization"
    )
    body = orjson.dumps(
        error_body(
            "rate_limited",
            f"rate limit exceeded: {verdict.limit} requests per minute for this {who}; "
            f"retry in {retry} s",
            [{"scope": verdict.scope, "limit": verdict.limit, "retryAfter": retry}],
        )
    )
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def request_principal(state: Any) -> Principal | None:
    """The principal the middleware authenticated; raises the error it met, if any."""
    principal = getattr(state, "principal", None)
    if principal is None:
        error = getattr(state, "auth_error", None)
        if isinstance(error, OrbinError):
            raise error
    return principal
