"""One error shape for every failure: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenancy.db import DatabaseUnavailable
from tenancy.errors import (
    Conflict,
    Gone,
    InvalidInput,
    LimitExceeded,
    NotFound,
    OrbinError,
    PermissionDenied,
    PlanLimitReached,
    TryLater,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger("orbin.api")
ENUM_ERRORS = ("literal_error", "enum")  # their message lists the valid values: say it at once

STATUS = {
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    Unauthenticated: 401,
    PermissionDenied: 403,
    InvalidInput: 422,
    LimitExceeded: 429,
    PlanLimitReached: 402,
    Unavailable: 503,
}


class ApiError(OrbinError):
    """An HTTP-level error that has no domain meaning (400 bad JSON, 413, 415)."""

    def __init__(self, status: int, code: str, message: str, details: list[Any] | None = None):
        super().__init__(message, details=details)
        self.status = status
        self.code = code


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out or ".".join(str(p) for p in loc)


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "field": _loc(tuple(e.get("loc", ()))),
            "message": "field required" if e.get("type") == "missing" else e.get("msg", ""),
            "type": e.get("type"),
        }
        for e in errors
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(OrbinError)
    async def _domain(request: Request, exc: OrbinError) -> JSONResponse:
        if isinstance(exc, ApiError):
            status = exc.status
        else:
            status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
        headers = {}
        if isinstance(exc, TryLater):
            headers.update(exc.headers)
            if exc.retry_after is not None:
                headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()))
        fields = ", ".join(
            f"{d['field']} ({d['message']})" if d["type"] in ENUM_ERRORS else d["field"]
            for d in details[:5]
        )
        return JSONResponse(
            error_body("validation_error", f"invalid request: {fields}", details), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DatabaseUnavailable)
    async def _database_down(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            error_body("unavailable", "the database is unavailable; retry shortly"),
            503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "internal error; it has been logged"), 500)
