"""OpenID Connect, relying-party side, for an organization's identity provider: discovery,
the authorization code flow with PKCE (S256), state and nonce (Authlib), and the ID token
verified against the provider's JWKS (joserfc; RS256 or ES256 only, never ``none`` or a
shared secret): signature, issuer, audience, expiry, nonce.

An organization's admin names the issuer, so every request to it is tenant-caused: it goes
through the egress policy (``tenancy.egress``), as a step's would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tenancy.egress.transport import SyncEgressTransport
from tenancy.errors import EgressRefused, InvalidInput, Unauthenticated, Unavailable

TIMEOUT_SECONDS = 10.0
SCOPE = "openid email profile"
ALGORITHMS = ["RS256", "ES256"]
LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def check_issuer(issuer: str) -> str:
    parts = urlsplit(issuer or "")
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query:
        raise InvalidInput(
            "issuer must be the provider's http(s) URL, e.g. https://login.example.com",
            details=[{"field": "issuer"}],
        )
    return issuer


def _client(**kw: Any) -> httpx.Client:
    return httpx.Client(
        transport=SyncEgressTransport(), trust_env=False, timeout=TIMEOUT_SECONDS, **kw
    )


def _get_json(url: str, what: str) -> dict[str, Any]:
    try:
        with _client() as client:
            resp = client.get(url, headers={"accept": "application/json"})
    except EgressRefused:
        raise
    except httpx.HTTPError as exc:
        raise Unavailable(f"the identity provider's {what} did not answer: {exc}") from None
    if resp.status_code != 200:
        raise Unavailable(f"the identity provider's {what} answered HTTP {resp.status_code}")
    try:
        doc = resp.json()
    except ValueError:
        raise Unavailable(f"the identity provider's {what} is not JSON") from None
    if not isinstance(doc, dict):
        raise Unavailable(f"the identity provider's {what} is not a JSON object")
    return doc


def discover(issuer: str) -> Provider:
    """The provider's endpoints from its discovery document, which must name this issuer."""
    check_issuer(issuer)
    doc = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery")
    if doc.get("issuer") != issuer:
        raise InvalidInput(
            f"the discovery document names issuer {str(doc.get('issuer'))[:200]!r}, not {issuer!r}",
            details=[{"field": "issuer"}],
        )
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = doc.get(name)
        if not isinstance(value, str) or urlsplit(value).scheme not in ("https", "http"):
            raise InvalidInput(
                f"the discovery document has no {name}", details=[{"field": "issuer"}]
            )
        endpoints[name] = value
    return Provider(issuer, **endpoints)


def authorization_url(
    provider: Provider,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    nonce: str,
    code_verifier: str,
) -> str:
    # Authlib builds the URL and the S256 challenge; it sends nothing.
    client = OAuth2Client(
        client_id=client_id, scope=SCOPE, redirect_uri=redirect_uri, code_challenge_method="S256"
    )
    url, _ = client.create_authorization_url(
        provider.authorization_endpoint, state=state, nonce=nonce, code_verifier=code_verifier
    )
    return str(url)


def exchange_code(
    provider: Provider,
    *,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    code: str,
    code_verifier: str,
) -> dict[str, Any]:
    """The token endpoint's answer (client_secret_basic, with the PKCE verifier), sent through
    the egress policy's client (Authlib's own client would bypass it)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    try:
        with _client() as client:
            resp = client.post(
                provider.token_endpoint,
                data=form,
                auth=httpx.BasicAuth(quote(client_id, safe=""), quote(client_secret, safe="")),
                headers={"accept": "application/json"},
            )
    except EgressRefused:
        raise
    except httpx.HTTPError as exc:
        raise Unavailable(f"the identity provider's token endpoint did not answer: {exc}") from None
    try:
        token = resp.json()
    except ValueError:
        token = None
    if not isinstance(token, dict):
        raise Unavailable(
            f"the identity provider's token endpoint answered HTTP {resp.status_code}"
        )
    if resp.status_code != 200 or "error" in token:
        why = str(token.get("error") or resp.status_code)[:100]
        raise Unauthenticated(
            f"the identity provider refused the authorization code: {why}", code="sso_code_refused"
        )
    if not isinstance(token.get("id_token"), str):
        raise Unauthenticated("the identity provider answered no ID token", code="sso_no_id_token")
    return token


def verify_id_token(
    provider: Provider, id_token: str, *, client_id: str, nonce: str
) -> dict[str, Any]:
    """The ID token's claims once its signature (the provider's JWKS) and its issuer,
    audience, expiry and nonce hold; anything else is Unauthenticated naming the reason."""
    keys = _get_json(provider.jwks_uri, "JWKS")
    try:
        key_set = KeySet.import_key_set(keys)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError):
        raise Unavailable("the identity provider's JWKS holds no usable key") from None
    try:
        token = jwt.decode(id_token, key_set, algorithms=ALGORITHMS)
    except (JoseError, ValueError, TypeError) as exc:
        raise Unauthenticated(
            f"the ID token does not verify: {type(exc).__name__}", code="sso_token_invalid"
        ) from None
    claims = dict(token.claims)
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise Unauthenticated(
            f"the ID token's claims do not hold: {exc.error}: {exc.description or ''}".strip(),
            code="sso_token_invalid",
        ) from None
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise Unauthenticated("the ID token is for another client", code="sso_token_invalid")
    return claims
