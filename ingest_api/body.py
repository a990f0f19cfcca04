"""Reading a JSON body defensively: size (413), content type (415), syntax (400), depth."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from ingest_api.errors import ApiError
from tenancy.config import get_settings


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        cur, d = stack.pop()
        deepest = max(deepest, d)
        if d > limit:
            return d
        if isinstance(cur, dict):
            stack.extend((v, d + 1) for v in cur.values())
        elif isinstance(cur, list):
            stack.extend((v, d + 1) for v in cur)
    return deepest


async def read_json(request: Request, *, allow_yaml: bool = False) -> Any:
    settings = get_settings()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_yaml = allow_yaml and ctype in ("application/yaml", "application/x-yaml", "text/yaml")
    if not is_yaml and ctype != "application/json" and not ctype.endswith("+json"):
        accepted = "application/json" + (" or application/yaml" if allow_yaml else "")
        raise ApiError(
            415, "unsupported_media_type", f"send the body as {accepted} (got {ctype or 'none'})"
        )
    length = request.headers.get("content-length")
    limit = settings.max_body_bytes
    if length and length.isdigit() and int(length) > limit:
        raise ApiError(413, "payload_too_large", f"the body exceeds {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the body is empty")
    try:
        if is_yaml:
            from orbin_flows.spec import load_yaml

            value = load_yaml(raw)
        else:
            value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(
            400, "invalid_json", f"the body is not valid {'YAML' if is_yaml else 'JSON'}: {exc}"
        ) from exc
    except Exception as exc:  # yaml.YAMLError and friends
        raise ApiError(400, "invalid_yaml", f"the body is not valid YAML: {exc}") from exc
    if _depth(value, settings.max_json_depth) > settings.max_json_depth:
        raise ApiError(
            422, "too_deep", f"the body nests deeper than {settings.max_json_depth} levels"
        )
    return value
