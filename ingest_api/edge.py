"""Input checks every route shares, once, before routing: no NUL character in the path,
the query or a JSON body (PostgreSQL cannot store it: it was a 500 from psycopg), and no
integer in the query beyond a 64-bit column's range. Each is a 4xx with the error body."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ingest_api.body import check_value
from ingest_api.errors import ApiError, error_body
from tenancy.config import get_settings

_INT = re.compile(r"[+-]?\d+")
_INT64 = (-(2**63), 2**63 - 1)
# \u0000 escaped in JSON: an odd run of backslashes before it (an even run is a literal "\").
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_LONG_DIGITS = re.compile(rb"\d{19}")
_JSON_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _problem(scope: dict[str, Any]) -> tuple[int, str, str, str] | None:
    if "\x00" in scope.get("path", "") or b"%00" in (scope.get("raw_path") or b""):
        return 400, "invalid_string", "path", "the path may not contain the NUL character"
    query = scope.get("query_string", b"")
    if query:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in key or "\x00" in value:
                return (
                    400,
                    "invalid_string",
                    key,
                    f"query parameter {key!r} holds a NUL character",
                )
            if len(value) > 18 and _INT.fullmatch(value):
                if not _INT64[0] <= int(value) <= _INT64[1]:
                    return (
                        422,
                        "out_of_range",
                        key,
                        f"query parameter {key!r} is beyond the 64-bit integer range",
                    )
    return None


async def _send_error(send: Any, status: int, code: str, field: str, message: str) -> None:
    await _send(send, status, error_body(code, message, [{"field": field, "message": message}]))


async def _send(send: Any, status: int, content: dict[str, Any]) -> None:
    body = orjson.dumps(content)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class EdgeMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _problem(scope)
        if problem is not None:
            await _drain(receive)
            await _send_error(send, *problem)
            return
        if scope.get("method") in _JSON_METHODS and _is_json(scope):
            receive = await self._checked_body(scope, receive, send)
            if receive is None:
                return
        await self.app(scope, receive, send)

    async def _checked_body(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """The body read ahead (within ORBIN_MAX_BODY_BYTES; beyond, the route's own 413),
        refused when it escapes a NUL; else handed on unchanged."""
        limit = get_settings().max_body_bytes
        messages: list[dict[str, Any]] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit or not message.get("more_body"):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if b"\\u0000" in body and _NUL_ESCAPE.search(body):
            try:  # the field that holds it, as the routes' own body check names it
                check_value(orjson.loads(body), max_depth=10**6)
                error = None
            except orjson.JSONDecodeError:
                error = None  # not JSON: the route answers 400
            except ApiError as exc:
                error = exc
            if error is not None:
                if messages[-1].get("more_body"):
                    await _drain(receive)
                await _send(
                    send, error.status, error_body(error.code, error.message, error.details)
                )
                return None
        if _LONG_DIGITS.search(body):
            field = _int_beyond_64_bits(body)
            if field is not None:
                if messages[-1].get("more_body"):
                    await _drain(receive)
                message = f"{field}: integers must fit in 64 bits (-2^63 to 2^63-1)"
                await _send_error(send, 422, "out_of_range", field, message)
                return None
        pending = iter(messages)

        async def replay() -> dict[str, Any]:
            for message in pending:
                return message
            return await receive()

        return replay


def _int_beyond_64_bits(body: bytes) -> str | None:
    """The path of the first integer beyond the 64-bit range (a database column's), if any.
    (Parsed exactly: Python's json keeps big integers; invalid JSON is the route's 400.)"""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[Any, str]] = [(value, "body")]
    while stack:
        cur, path = stack.pop()
        if isinstance(cur, bool):
            continue
        if isinstance(cur, int) and not _INT64[0] <= cur <= _INT64[1]:
            return path.removeprefix("body.") if path != "body" else path
        if isinstance(cur, dict):
            stack.extend((v, f"{path}.{k}") for k, v in cur.items())
        elif isinstance(cur, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(cur))
    return None


def _is_json(scope: dict[str, Any]) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            ctype = value.split(b";")[0].strip().lower()
            return ctype == b"application/json" or ctype.endswith(b"+json")
    return False


async def _drain(receive: Any) -> None:
    """Read what is left of the request body, so the connection stays usable."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
