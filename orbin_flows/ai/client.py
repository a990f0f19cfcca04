"""One call to the model through the official ``openai`` SDK: a JSON object back, and usage."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import openai

from orbin_flows.ai.errors import AINotConfigured, AIUpstreamError
from orbin_flows.ai.settings import AISettings

log = logging.getLogger("orbin.ai")


@dataclass
class Answer:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


def make_client(settings: AISettings) -> openai.AsyncOpenAI:
    if not settings.configured or settings.api_key is None:
        raise AINotConfigured(
            "AI assistance is not configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for a "
            "server other than OpenAI's, ORBIN_AI_MODEL for the model)"
        )
    # The SDK retries connection errors, 408, 409, 429 and 5xx with backoff.
    return openai.AsyncOpenAI(
        api_key=settings.api_key.get_secret_value(),
        base_url=settings.base_url or None,
        timeout=settings.timeout_seconds,
        max_retries=settings.max_retries,
    )


async def complete(
    client: openai.AsyncOpenAI,
    settings: AISettings,
    messages: list[dict[str, str]],
    schema: tuple[str, dict[str, Any]] | None = None,
) -> Answer:
    """The model's answer; ``schema`` (name, JSON Schema) is used when structured output is on."""
    if not settings.structured:
        schema = None
    try:
        try:
            return await _call(client, settings, messages, schema)
        except openai.BadRequestError:
            if not settings.json_mode:
                raise
            # A server without JSON mode refuses response_format: ask for plain JSON instead.
            log.info("the model server refused JSON mode; asking for plain JSON")
            plain = settings.model_copy(update={"json_mode": False})
            return await _call(client, plain, messages, None)
    except openai.APIStatusError as exc:
        log.warning("model server answered %s", exc.status_code)
        raise AIUpstreamError(
            f"the model server answered {exc.status_code}: {_message(exc)}",
            details=[{"upstreamStatus": exc.status_code}],
        ) from exc
    except openai.APITimeoutError as exc:
        raise AIUpstreamError(
            f"the model server did not answer within {settings.timeout_seconds:g} s"
        ) from exc
    except openai.APIConnectionError as exc:
        raise AIUpstreamError(f"the model server cannot be reached: {exc}") from exc
    except openai.OpenAIError as exc:
        raise AIUpstreamError(f"the model server's answer could not be read: {exc}") from exc


async def _call(
    client: openai.AsyncOpenAI,
    settings: AISettings,
    messages: list[dict[str, str]],
    schema: tuple[str, dict[str, Any]] | None,
) -> Answer:
    if settings.api == "responses":
        return await _responses(client, settings, messages, schema)
    return await _chat(client, settings, messages, _json_format(settings, schema))


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
    return str(exc.message)[:300]


def _json_format(settings: AISettings, schema: tuple[str, dict[str, Any]] | None) -> dict[str, Any]:
    if not settings.json_mode:
        return {}
    if schema is not None:
        name, body = schema
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": body, "strict": False},
            }
        }
    return {"response_format": {"type": "json_object"}}


async def _chat(
    client: openai.AsyncOpenAI,
    settings: AISettings,
    messages: list[dict[str, str]],
    fmt: dict[str, Any],
) -> Answer:
    request: dict[str, Any] = {
        "model": settings.model,
        "messages": messages,
        "temperature": 0.2,
    }
    if settings.stream:
        stream = await client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}, **fmt
        )
        return await _read_stream(stream)
    resp = await client.chat.completions.create(**request, **fmt)
    text = resp.choices[0].message.content or "" if resp.choices else ""
    usage = resp.usage
    return Answer(
        text,
        usage.prompt_tokens if usage else 0,
        usage.completion_tokens if usage else 0,
    )


async def _read_stream(stream: Any) -> Answer:
    parts: list[str] = []
    answer = Answer("")
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta and choice.delta.content:
                parts.append(choice.delta.content)
        if chunk.usage:
            answer.prompt_tokens = chunk.usage.prompt_tokens
            answer.completion_tokens = chunk.usage.completion_tokens
    answer.text = "".join(parts)
    return answer


async def _responses(
    client: openai.AsyncOpenAI,
    settings: AISettings,
    messages: list[dict[str, str]],
    schema: tuple[str, dict[str, Any]] | None,
) -> Answer:
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    extra: dict[str, Any] = {}
    if settings.json_mode and schema is not None:
        extra["text"] = {"format": {"type": "json_schema", "name": schema[0], "schema": schema[1]}}
    elif settings.json_mode:
        extra["text"] = {"format": {"type": "json_object"}}
    resp = await client.responses.create(
        model=settings.model,
        instructions=system or None,
        input=rest,  # type: ignore[arg-type]
        **extra,
    )
    usage = resp.usage
    return Answer(
        resp.output_text or "",
        usage.input_tokens if usage else 0,
        usage.output_tokens if usage else 0,
    )
