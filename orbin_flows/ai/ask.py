"""The conversation with the model: rate limit, one question, validation, repairs, metering."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from orbin_flows.ai import prompts
from orbin_flows.ai.client import complete, make_client
from orbin_flows.ai.errors import AIAnswerInvalid, AIRateLimited, AIUpstreamError
from orbin_flows.ai.settings import AISettings
from tenancy import ai_usage
from tenancy.clock import now_ms
from tenancy.db import session_scope
from tenancy.errors import InvalidInput
from tenancy.plans import get_plan
from tenancy.principal import Principal

log = logging.getLogger("orbin.ai")
T = TypeVar("T")
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class Invalid(Exception):
    """The answer does not have the asked shape; ``errors`` go back to the model."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def parse_object(text: str) -> dict[str, Any]:
    m = _FENCE.match(text)
    body = m.group(1) if m else text.strip()
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise Invalid([{"path": "", "message": f"the answer is not JSON: {exc}"}]) from exc
    if not isinstance(value, dict):
        raise Invalid([{"path": "", "message": "the answer must be one JSON object"}])
    return value


def limit_per_minute(principal: Principal, settings: AISettings) -> int:
    if settings.requests_per_minute is not None:
        return settings.requests_per_minute
    return get_plan(principal.plan).ai_requests_per_minute


def _reserve(principal: Principal, feature: str, settings: AISettings) -> int:
    limit = limit_per_minute(principal, settings)
    with session_scope() as session:
        r = ai_usage.reserve_ai_request(
            session,
            organization_id=principal.organization_id,
            feature=feature,
            model=settings.model,
            actor_id=principal.user_id or principal.key_id,
        )
        refused = r.in_window > limit
        if refused:
            ai_usage.refuse_ai_request(
                session, organization_id=principal.organization_id, usage_id=r.id
            )
    if refused:
        wait = max(1.0, ((r.oldest_at or now_ms()) + 60_000 - now_ms()) / 1000)
        raise AIRateLimited(
            f"this organization's AI requests per minute ({limit}) are used up; retry in "
            f"{wait:.0f} s",
            retry_after=wait,
            headers={"X-AI-RateLimit-Limit": str(limit)},
        )
    return r.id


def _finish(principal: Principal, usage_id: int, status: str, tallies: list[int]) -> None:
    with session_scope() as session:
        ai_usage.finish_ai_request(
            session,
            organization_id=principal.organization_id,
            usage_id=usage_id,
            status=status,
            requests=tallies[0],
            prompt_tokens=tallies[1],
            completion_tokens=tallies[2],
        )


async def ask(
    principal: Principal,
    settings: AISettings,
    *,
    feature: str,
    context: str,
    validate: Callable[[dict[str, Any]], T],
) -> T:
    """Ask, then send the validation errors back (at most ``max_repairs`` times)."""
    client = make_client(settings)
    usage_id = await asyncio.to_thread(_reserve, principal, feature, settings)
    messages = [
        {"role": "system", "content": prompts.system(feature)},
        {"role": "user", "content": context},
    ]
    tallies = [0, 0, 0]
    status = "failed"
    errors: list[dict[str, str]] = []
    try:
        for _ in range(settings.max_repairs + 1):
            answer = await complete(
                client, settings, messages, (f"orbin_{feature}", prompts.answer_schema(feature))
            )
            tallies[0] += 1
            tallies[1] += answer.prompt_tokens
            tallies[2] += answer.completion_tokens
            try:
                result = validate(parse_object(answer.text))
            except Invalid as exc:
                errors = exc.errors
            except InvalidInput as exc:
                errors = list(exc.details) or [{"path": "", "message": exc.message}]
            else:
                status = "ok"
                return result
            log.info("model answer invalid (%d errors); asking for a repair", len(errors))
            messages.append({"role": "assistant", "content": answer.text[:20_000]})
            messages.append({"role": "user", "content": prompts.repair(errors)})
        status = "invalid"
        head = "; ".join(f"{e.get('path', '')}: {e.get('message', '')}" for e in errors[:5])
        raise AIAnswerInvalid(
            f"the model's answer was still invalid after {settings.max_repairs} repair(s): {head}",
            details=errors,
        )
    except AIUpstreamError:
        status = "upstream_error"
        raise
    finally:
        await asyncio.to_thread(_finish, principal, usage_id, status, tallies)
