"""The providers Orbin integrates with: each one's config and credential fields, checked
before anything is stored, and how its connection is tested."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orbin_flows.integrations import github, salesforce, slack, webhook
from orbin_flows.integrations import stripe as stripe_api
from tenancy.errors import InvalidInput
from tenancy.integrations import ResolvedIntegration


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value


class WebhookConfig(_Fields):
    url: str = Field(min_length=1, max_length=2000)
    _url = field_validator("url")(_http_url)


class WebhookCredentials(_Fields):
    signingSecret: str = Field(min_length=8, max_length=500)  # noqa: N815 - the API's name


class SlackConfig(_Fields):
    baseUrl: str | None = Field(default=None, max_length=2000)  # noqa: N815
    _url = field_validator("baseUrl")(_http_url)


class _OAuthTokens(_Fields):
    """Set by an OAuth connection: the access token is refreshed before ``expiresAt``."""

    refreshToken: str | None = Field(default=None, max_length=4000)  # noqa: N815
    expiresAt: int | None = None  # noqa: N815


class SlackCredentials(_OAuthTokens):
    botToken: str = Field(min_length=8, max_length=500, pattern=r"^xox[a-z]-")  # noqa: N815


class GithubConfig(_Fields):
    baseUrl: str | None = Field(default=None, max_length=2000)  # noqa: N815
    _url = field_validator("baseUrl")(_http_url)


class GithubCredentials(_OAuthTokens):
    token: str = Field(min_length=8, max_length=500)


class StripeConfig(_Fields):
    apiBase: str | None = Field(default=None, max_length=2000)  # noqa: N815
    _url = field_validator("apiBase")(_http_url)


class StripeCredentials(_Fields):
    secretKey: str = Field(min_length=8, max_length=500, pattern=r"^(sk|rk)_")  # noqa: N815


class SalesforceConfig(_Fields):
    instanceUrl: str = Field(min_length=1, max_length=2000)  # noqa: N815
    apiVersion: str | None = Field(default=None, pattern=r"^\d+\.\d$")  # noqa: N815

    @field_validator("instanceUrl")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://") or not urlsplit(value).hostname:
            raise ValueError("must be an https:// URL (https://<domain>.my.salesforce.com)")
        return value


class SalesforceCredentials(_OAuthTokens):
    accessToken: str = Field(min_length=8, max_length=4000)  # noqa: N815


@dataclass(frozen=True)
class Provider:
    name: str
    config: type[BaseModel]
    credentials: type[BaseModel]
    test: Callable[[ResolvedIntegration], Awaitable[str]]


def _threaded(fn: Callable[[ResolvedIntegration], str]) -> Callable[..., Awaitable[str]]:
    async def run(integration: ResolvedIntegration) -> str:
        return await asyncio.to_thread(fn, integration)

    return run


PROVIDERS: dict[str, Provider] = {
    "webhook": Provider("webhook", WebhookConfig, WebhookCredentials, webhook.test),
    "slack": Provider("slack", SlackConfig, SlackCredentials, _threaded(slack.test)),
    "github": Provider("github", GithubConfig, GithubCredentials, _threaded(github.test)),
    "stripe": Provider("stripe", StripeConfig, StripeCredentials, _threaded(stripe_api.test)),
    "salesforce": Provider(
        "salesforce", SalesforceConfig, SalesforceCredentials, _threaded(salesforce.test)
    ),
}


def provider(name: Any) -> Provider:
    if not isinstance(name, str) or name not in PROVIDERS:
        raise InvalidInput(
            f"unknown provider {name!r}; one of " + ", ".join(sorted(PROVIDERS)),
            details=[{"field": "provider", "message": "unknown provider"}],
        )
    return PROVIDERS[name]


def _checked(model: type[BaseModel], data: Any, where: str) -> dict[str, Any]:
    try:
        parsed = model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        details = [
            {
                "field": ".".join([where, *(str(p) for p in e["loc"])]),
                "message": e["msg"],
            }
            for e in exc.errors(include_input=False)  # the input may be a secret
        ]
        raise InvalidInput(
            f"invalid {where}: " + "; ".join(f"{d['field']}: {d['message']}" for d in details),
            details=details,
        ) from None
    return parsed.model_dump(exclude_none=True)


def check_config(p: Provider, data: Any) -> dict[str, Any]:
    return _checked(p.config, data, "config")


def check_credentials(p: Provider, data: Any) -> dict[str, Any]:
    return _checked(p.credentials, data, "credentials")
