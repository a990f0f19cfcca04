"""OAuth connection (Slack, GitHub, Salesforce) with Authlib: authorization code + PKCE.

``start`` answers the provider's authorize URL. Its ``state`` is the pending connection itself
(organization, integration name, PKCE verifier, expiry), encrypted with Orbin's keys, so the
callback needs no API key and nothing is stored before the user consents. ``complete``
exchanges the code and stores the tokens encrypted, as any credential. ``ensure_fresh``
refreshes an access token before it expires; a refused refresh is a credential error (the
integration goes into ``error`` with the reason).

Client ids and secrets are operator settings: ``ORBIN_OAUTH_<PROVIDER>_CLIENT_ID`` and
``..._CLIENT_SECRET`` (``..._AUTHORIZE_URL``, ``..._TOKEN_URL``, ``..._SCOPE`` override the
provider's defaults, e.g. for GitHub Enterprise or a Salesforce sandbox).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from orbin_flows.integrations import http
from orbin_flows.integrations.errors import ProviderError
from tenancy import crypto
from tenancy import integrations as repo
from tenancy.audit import record_audit
from tenancy.config import get_settings
from tenancy.db import session_scope
from tenancy.errors import InvalidInput, NotFound
from tenancy.integrations import Integration, ResolvedIntegration
from tenancy.principal import Principal, require_admin, system_principal

STATE_TTL_SECONDS = 600
REFRESH_LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class Endpoints:
    authorize_url: str
    token_url: str
    scope: str
    token_field: str  # the credential the access token becomes


DEFAULTS = {
    "slack": Endpoints(
        "https://slack.com/oauth/v2/authorize",
        "https://slack.com/api/oauth.v2.access",
        "chat:write",
        "botToken",
    ),
    "github": Endpoints(
        "https://github.com/login/oauth/authorize",
        "https://github.com/login/oauth/access_token",
        "repo",
        "token",
    ),
    "salesforce": Endpoints(
        "https://login.salesforce.com/services/oauth2/authorize",
        "https://login.salesforce.com/services/oauth2/token",
        "api refresh_token",
        "accessToken",
    ),
}


class OAuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORBIN_OAUTH_", extra="ignore")

    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_authorize_url: str | None = None
    slack_token_url: str | None = None
    slack_scope: str | None = None
    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    github_authorize_url: str | None = None
    github_token_url: str | None = None
    github_scope: str | None = None
    salesforce_client_id: str | None = None
    salesforce_client_secret: SecretStr | None = None
    salesforce_authorize_url: str | None = None
    salesforce_token_url: str | None = None
    salesforce_scope: str | None = None


@dataclass(frozen=True)
class OAuthApp:
    provider: str
    client_id: str
    client_secret: str
    endpoints: Endpoints


def app_for(provider: str) -> OAuthApp:
    if provider not in DEFAULTS:
        raise InvalidInput(
            f"OAuth connection is for {', '.join(sorted(DEFAULTS))}, not {provider!r}",
            details=[{"field": "provider", "message": "no OAuth for this provider"}],
        )
    s = OAuthSettings()
    client_id = getattr(s, f"{provider}_client_id")
    client_secret = getattr(s, f"{provider}_client_secret")
    if not client_id or client_secret is None:
        env = f"ORBIN_OAUTH_{provider.upper()}"
        raise InvalidInput(
            f"OAuth for {provider} is not configured on this Orbin "
            f"(the operator sets {env}_CLIENT_ID and {env}_CLIENT_SECRET)",
            details=[{"field": "provider", "message": "not configured"}],
        )
    d = DEFAULTS[provider]
    endpoints = Endpoints(
        getattr(s, f"{provider}_authorize_url") or d.authorize_url,
        getattr(s, f"{provider}_token_url") or d.token_url,
        getattr(s, f"{provider}_scope") or d.scope,
        d.token_field,
    )
    return OAuthApp(provider, client_id, client_secret.get_secret_value(), endpoints)


def redirect_uri(provider: str) -> str:
    return f"{get_settings().api_url}/v1/integrations/oauth/{provider}/callback"


def _client(app: OAuthApp, **kw: Any) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=app.client_id,
        client_secret=app.client_secret,
        scope=app.endpoints.scope,
        redirect_uri=redirect_uri(app.provider),
        code_challenge_method="S256",
        timeout=30.0,
        event_hooks={"request": [http.check_request]},
        **kw,
    )


def start(principal: Principal, provider: str, name: str) -> str:
    """The provider's authorize URL for connecting integration ``name``."""
    require_admin(principal)
    from orbin_flows.integrations.service import NAME

    if not NAME.match(name or ""):
        raise InvalidInput("name: 1-63 letters, digits, '-' or '_'", details=[{"field": "name"}])
    app = app_for(provider)
    verifier = generate_token(48)
    state = crypto.encrypt(
        json.dumps(
            {
                "o": principal.organization_id,
                "s": principal.organization_slug,
                "p": provider,
                "n": name,
                "u": principal.user_id,
                "v": verifier,
                "e": int(time.time()) + STATE_TTL_SECONDS,
                "r": secrets.token_hex(8),
            }
        )
    )
    url, _ = _client(app).create_authorization_url(
        app.endpoints.authorize_url, state=state, code_verifier=verifier
    )
    return str(url)


def _pending(provider: str, state: str) -> dict[str, Any]:
    try:
        data = json.loads(crypto.decrypt(state))
    except Exception:  # noqa: BLE001 - any undecryptable state is simply not ours
        raise InvalidInput(
            "unknown or tampered OAuth state", details=[{"field": "state"}]
        ) from None
    if data.get("p") != provider:
        raise InvalidInput("this OAuth state is for another provider", details=[{"field": "state"}])
    if int(data.get("e", 0)) < time.time():
        raise InvalidInput(
            "this OAuth connection took too long (10 minutes); start again",
            details=[{"field": "state"}],
        )
    return data


def _credentials(app: OAuthApp, token: dict[str, Any]) -> dict[str, Any]:
    access = token.get("access_token")
    if not access:
        why = token.get("error") or "no access_token in the answer"
        raise ProviderError(f"{app.provider} OAuth: {why}", credential=True)
    out: dict[str, Any] = {app.endpoints.token_field: access}
    if token.get("refresh_token"):
        out["refreshToken"] = token["refresh_token"]
    if token.get("expires_at"):
        out["expiresAt"] = int(token["expires_at"])
    elif token.get("expires_in"):
        out["expiresAt"] = int(time.time()) + int(token["expires_in"])
    return out


async def complete(
    provider: str, *, code: str | None, state: str | None, error: str | None = None
) -> Integration:
    """The callback: exchange the code (with the PKCE verifier), store the tokens."""
    if not state:
        raise InvalidInput("state: field required", details=[{"field": "state"}])
    pending = _pending(provider, state)
    if error:
        raise InvalidInput(f"{provider} did not authorize: {error}", details=[{"field": "error"}])
    if not code:
        raise InvalidInput("code: field required", details=[{"field": "code"}])
    app = app_for(provider)
    try:
        async with _client(app) as client:
            token = await client.fetch_token(
                app.endpoints.token_url,
                code=code,
                code_verifier=pending["v"],
                headers={"accept": "application/json"},
            )
        creds = _credentials(app, dict(token))
    except ProviderError as exc:
        raise InvalidInput(exc.message, details=[{"field": "code"}]) from None
    except Exception as exc:  # noqa: BLE001 - Authlib's OAuthError, httpx errors, egress
        raise InvalidInput(
            f"{provider} refused the authorization code: {exc}", details=[{"field": "code"}]
        ) from None
    config: dict[str, Any] = {}
    if provider == "salesforce":
        if not token.get("instance_url"):
            raise InvalidInput("Salesforce answered no instance_url", details=[{"field": "code"}])
        config["instanceUrl"] = token["instance_url"]
    return _store(pending, provider, config, creds)


def _store(
    pending: dict[str, Any], provider: str, config: dict[str, Any], creds: dict[str, Any]
) -> Integration:
    from orbin_flows.integrations.providers import check_config, check_credentials
    from orbin_flows.integrations.providers import provider as provider_of

    p = provider_of(provider)
    principal = system_principal(pending["o"], pending["s"])
    with session_scope() as session:
        try:
            row = repo.read_integration_by_name(
                session, organization_id=pending["o"], name=pending["n"]
            )
        except NotFound:
            row = repo.create_integration(
                session,
                organization_id=pending["o"],
                provider=provider,
                name=pending["n"],
                config=check_config(p, config),
                credentials=check_credentials(p, creds),
                connected_by=pending.get("u"),
            )
            action = "integration.connected"
        else:
            if row.provider != provider:
                raise InvalidInput(
                    f"integration {row.name!r} is a {row.provider} integration",
                    details=[{"field": "name"}],
                )
            merged = {**(row.config or {}), **config}
            repo.update_integration(
                session,
                integration=row,
                config=check_config(p, merged),
                credentials=check_credentials(p, creds),
            )
            action = "integration.reconnected"
        record_audit(session, principal, action, "integration", row.id, {"provider": provider})
        return row


async def ensure_fresh(integration: ResolvedIntegration) -> ResolvedIntegration:
    """The integration with an access token valid for at least a minute more."""
    creds = integration.credentials
    expires_at = creds.get("expiresAt")
    if not expires_at or int(expires_at) - REFRESH_LEEWAY_SECONDS > time.time():
        return integration
    if not creds.get("refreshToken"):
        raise ProviderError(f"the {integration.provider} access token expired", credential=True)
    app = app_for(integration.provider)
    try:
        async with _client(app) as client:
            token = await client.refresh_token(
                app.endpoints.token_url,
                refresh_token=creds["refreshToken"],
                headers={"accept": "application/json"},
            )
        new = _credentials(app, dict(token))
    except ProviderError as exc:
        raise ProviderError(f"token refresh failed: {exc.message}", credential=True) from None
    except Exception as exc:  # noqa: BLE001
        raise ProviderError(f"token refresh failed: {exc}", credential=True) from None
    new.setdefault("refreshToken", creds["refreshToken"])  # providers may not rotate it
    merged = {**creds, **new}
    with session_scope() as session:
        row = repo.read_integration(
            session, organization_id=integration.organization_id, integration_id=integration.id
        )
        repo.update_integration(session, integration=row, credentials=merged)
    from orbin_flows.integrations.service import sync_block

    await sync_block(integration.organization_id, integration.id)  # code flows get it too
    return ResolvedIntegration(
        integration.id,
        integration.organization_id,
        integration.provider,
        integration.name,
        "active",
        integration.config,
        merged,
    )
