"""Salesforce through simple-salesforce: the REST API of ``instanceUrl`` with an OAuth access
token (``accessToken``). simple-salesforce always speaks HTTPS, as Salesforce does.

Calls are synchronous (requests); steps run them in a thread, through the egress proxy
(``http.proxied``).
"""

from __future__ import annotations

import json
from typing import Any

import requests
from simple_salesforce import (
    Salesforce,
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
)

from orbin_flows.integrations import http
from orbin_flows.integrations.errors import ProviderError

DEFAULT_VERSION = "59.0"


def client(integration: Any, proxy: str) -> Salesforce:
    url = http.provider_url(str(integration.config["instanceUrl"]).rstrip("/"))
    return Salesforce(
        instance_url=url,
        session_id=integration.credentials["accessToken"],
        version=str(integration.config.get("apiVersion") or DEFAULT_VERSION),
        session=http.requests_session(proxy),
    )


def _message(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, (bytes, str)):
        try:
            content = json.loads(content)
        except ValueError:
            return str(content)[:300]
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return f"{first.get('errorCode', '')}: {first.get('message', '')}".strip(": ")
    return str(content)[:300]


def _error(what: str, exc: Exception) -> ProviderError:
    if isinstance(exc, SalesforceError):
        message = f"Salesforce {what}: {exc.status} {_message(exc)}"
        limited = "REQUEST_LIMIT_EXCEEDED" in message
        return ProviderError(
            message,
            retryable=limited or isinstance(exc, SalesforceGeneralError) and exc.status >= 500,
            credential=isinstance(exc, (SalesforceExpiredSession, SalesforceAuthenticationFailed)),
        )
    return ProviderError(f"Salesforce {what}: {exc}", retryable=True)


_ERRORS = (SalesforceError, requests.RequestException, OSError)


def test(integration: Any) -> str:
    try:
        with http.proxied() as proxy:
            limits = client(integration, proxy).limits()
    except _ERRORS as exc:
        raise _error("limits", exc) from exc
    daily = (limits or {}).get("DailyApiRequests") or {}
    return f"API requests remaining today: {daily.get('Remaining', 'unknown')}"


def create_record(integration: Any, *, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
    try:
        with http.proxied() as proxy:
            result = getattr(client(integration, proxy), sobject).create(fields)
    except _ERRORS as exc:
        raise _error(f"create {sobject}", exc) from exc
    return {"id": result.get("id"), "success": bool(result.get("success"))}


def query(integration: Any, *, soql: str) -> dict[str, Any]:
    try:
        with http.proxied() as proxy:
            result = client(integration, proxy).query(soql)
    except _ERRORS as exc:
        raise _error("query", exc) from exc
    records = [
        {k: v for k, v in dict(r).items() if k != "attributes"} for r in result.get("records", [])
    ]
    return {"totalSize": result.get("totalSize"), "done": result.get("done"), "records": records}
