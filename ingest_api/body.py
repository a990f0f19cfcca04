"""Reading a JSON body defensively: size (413), content type (415), syntax (400), shape (422).

Whatever a client sends, the answer is a 4xx with the error body, never a 500: the body is
parsed by orjson (no NaN/Infinity, no lone surrogates, bounded nesting, no recursion error),
then walked once for depth, size and the NUL character PostgreSQL cannot store.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from ingest_api.errors import ApiError
from tenancy.config import get_settings

_MAX_VALUES = 1_000_000  # a YAML alias bomb expands to more; no 1 MiB JSON body reaches it
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


def _path(parts: tuple[Any, ...]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out or "body"


def check_value(value: Any, *, max_depth: int) -> None:
    """Refuse (422) values nested deeper than ``max_depth`` or holding a NUL character."""
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 1, ())]
    seen = 0
    while stack:
        cur, depth, path = stack.pop()
        seen += 1
        if depth > max_depth:
            raise ApiError(
                422,
                "too_deep",
                f"the body nests deeper than {max_depth} levels (at {_path(path)})",
                [{"field": _path(path), "maxDepth": max_depth}],
            )
        if seen > _MAX_VALUES:
            raise ApiError(413, "payload_too_large", "the body holds too many values")
        if isinstance(cur, str):
            if "\x00" in cur:
                _nul(path)
        elif isinstance(cur, dict):
            for k, v in cur.items():
                if isinstance(k, str) and "\x00" in k:
                    _nul(path)
                stack.append((v, depth + 1, (*path, k)))
        elif isinstance(cur, list):
            stack.extend((v, depth + 1, (*path, i)) for i, v in enumerate(cur))


def _nul(path: tuple[Any, ...]) -> None:
    raise ApiError(
        422,
        "invalid_string",
        f"{_path(path)}: strings may not contain the NUL character (\\u0000)",
        [{"field": _path(path), "message": "NUL character (\\u0000) not allowed"}],
    )


async def read_body(request: Request) -> bytes:
    """The raw body, refused (413) past ``ORBIN_MAX_BODY_BYTES`` even when sent chunked."""
    limit = get_settings().max_body_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise ApiError(413, "payload_too_large", f"the body exceeds {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, *, allow_yaml: bool = False) -> Any:
    settings = get_settings()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_yaml = allow_yaml and ctype in _YAML_TYPES
    if not is_yaml and ctype != "application/json" and not ctype.endswith("+json"):
        accepted = "application/json" + (" or application/yaml" if allow_yaml else "")
        raise ApiError(
            415, "unsupported_media_type", f"send the body as {accepted} (got {ctype or 'none'})"
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ApiError(
            415, "unsupported_media_type", f"send the body uncompressed (got {encoding})"
        )
    raw = await read_body(request)
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the body is empty")
    if is_yaml:
        value = _load_yaml(raw)
    else:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc):
                raise ApiError(
                    422,
                    "too_deep",
                    f"the body nests deeper than {settings.max_json_depth} levels",
                ) from exc
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc
    check_value(value, max_depth=settings.max_json_depth)
    return value


def _load_yaml(raw: bytes) -> Any:
    from orbin_flows.spec import load_yaml  # no aliases: no "billion laughs"

    try:
        return load_yaml(raw)
    except Exception as exc:  # yaml.YAMLError, RecursionError, UnicodeDecodeError ...
        raise ApiError(400, "invalid_yaml", f"the body is not valid YAML: {exc}") from exc
