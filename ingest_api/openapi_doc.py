"""The statuses every operation can answer, added to the OpenAPI document where a route does
not list them itself: what the shared layers answer (the edge's 400/422, authentication's
401/403, rate limits' 429, a path id's 404, a body's 413/415, the database's 503), each with
the one error shape. Routes document their own successes and specific errors."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {}},
            },
        }
    },
}
_REF = {"$ref": "#/components/schemas/Error"}

_WHY = {
    "400": "Bad input: invalid JSON, or a NUL character in the path or query",
    "402": "The organization's plan caps this (members, integrations): the answer names the limit",
    "401": "Missing or wrong API key (for hooks: a signature that does not verify)",
    "403": "The key's role or permissions do not allow this",
    "404": "No such object in this organization (or no such organization in x-orbin-org)",
    "405": "Method not allowed (see the Allow header)",
    "413": "The body is too large",
    "415": "The body is not JSON",
    "422": "Invalid input, naming the field (an integer beyond 64 bits included)",
    "429": "Rate limit exceeded (see Retry-After)",
    "503": "The database (or the ingest writer) is unavailable; retry after Retry-After",
}


# Operations that take a seat or an integration from the plan (tenancy.plan_limits).
_PLAN_CAPPED = {
    ("post", "/v1/invitations"),
    ("post", "/v1/invitations/accept"),
    ("post", "/v1/integrations"),
    ("get", "/v1/integrations/oauth/{provider}/callback"),
}


def _statuses(path: str, method: str, op: dict[str, Any]) -> list[str]:
    if path == "/healthz":
        return ["503"]
    out = ["400", "422", "503"]
    if not path.startswith("/v1/hooks/"):
        out += ["401", "403", "429"]
    else:
        out += ["401", "404", "413", "415"]
    if "{" in path or path.startswith("/v1/"):  # a path id, or the x-orbin-org named
        out.append("404")
    if method in ("post", "put", "patch"):  # a body, declared or read by the route itself
        out += ["413", "415"]
    if (method, path) in _PLAN_CAPPED:
        out.append("402")
    return out


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the shared statuses to every operation, in place; returns the document."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            for status in _statuses(path, method, op):
                if status not in responses:
                    responses[status] = {
                        "description": _WHY[status],
                        "content": {"application/json": {"schema": _REF}},
                    }
    return schema
