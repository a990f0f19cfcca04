"""GitHub through PyGithub, against ``baseUrl`` when set (GitHub Enterprise: ``.../api/v3``).

Calls are synchronous (PyGithub uses requests); steps run them in a thread. PyGithub's own
retries and throttling are off: a failed call is the step's to retry, with its policy.
Every request goes through the egress proxy (``http.proxied``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import requests
from github import Auth, Github, GithubException, RateLimitExceededException
from github.Requester import (
    HTTPRequestsConnectionClass,
    HTTPSRequestsConnectionClass,
    Requester,
)

from orbin_flows.integrations import http
from orbin_flows.integrations.errors import ProviderError, retry_after_seconds
from tenancy.integrations import ResolvedIntegration

DEFAULT_BASE_URL = "https://api.github.com"


def base_url(config: dict[str, Any]) -> str:
    return str(config.get("baseUrl") or DEFAULT_BASE_URL).rstrip("/")


# PyGithub builds its requests Session inside its connection classes, which can only be
# replaced process-wide: ours route through the proxy of the call under way.
_PROXY: ContextVar[str | None] = ContextVar("orbin_github_proxy", default=None)


def _route(session: requests.Session) -> None:
    proxy = _PROXY.get()
    if proxy is None:
        raise http.EgressRefused("PyGithub called outside http.proxied(): refused")
    session.trust_env = False  # HTTPS_PROXY / NO_PROXY cannot route around the proxy
    session.proxies = {"http": proxy, "https": proxy}


class _HTTPConnection(HTTPRequestsConnectionClass):
    def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        _route(self.session)


class _HTTPSConnection(HTTPSRequestsConnectionClass):
    def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        _route(self.session)


@contextlib.contextmanager
def _proxied() -> Iterator[None]:
    with http.proxied() as proxy:
        token = _PROXY.set(proxy)
        try:
            yield
        finally:
            _PROXY.reset(token)


def client(integration: ResolvedIntegration, timeout: int = 30) -> Github:
    """A client for calls inside ``_proxied()`` (its connections are made there)."""
    url = http.provider_url(base_url(integration.config))
    Requester.injectConnectionClasses(_HTTPConnection, _HTTPSConnection)
    return Github(
        base_url=url,
        auth=Auth.Token(integration.credentials["token"]),
        timeout=timeout,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
        user_agent="Orbin",
        verify=http.ca_bundle(),
    )


def _wait(exc: GithubException) -> float | None:
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    wait = retry_after_seconds(headers.get("retry-after"))
    if wait is None and headers.get("x-ratelimit-remaining") == "0":
        import time

        reset = retry_after_seconds(headers.get("x-ratelimit-reset"))
        wait = max(0.0, reset - time.time()) if reset is not None else None
    return wait


def _error(what: str, exc: Exception) -> ProviderError:
    if isinstance(exc, RateLimitExceededException) or (
        isinstance(exc, GithubException) and exc.status in (403, 429) and _wait(exc) is not None
    ):
        assert isinstance(exc, GithubException)
        return ProviderError(f"GitHub {what}: rate limited", retryable=True, retry_after=_wait(exc))
    if isinstance(exc, GithubException):
        data = exc.data if isinstance(exc.data, dict) else {}
        message = data.get("message") or str(exc.data or exc)
        return ProviderError(
            f"GitHub {what}: {exc.status} {message}",
            retryable=exc.status >= 500,
            credential=exc.status == 401,
        )
    return ProviderError(f"GitHub {what}: {exc}", retryable=True)


_ERRORS = (GithubException, requests.RequestException, OSError)


def test(integration: ResolvedIntegration) -> str:
    try:
        with _proxied():
            login = client(integration).get_user().login
    except _ERRORS as exc:
        raise _error("GET /user", exc) from exc
    return f"authenticated as {login}"


def _repo(gh: Github, full_name: str) -> Any:
    return gh.get_repo(full_name, lazy=True)


def create_issue(
    integration: ResolvedIntegration,
    *,
    repo: str,
    title: str,
    body: str | None = None,
    labels: list[str] | None = None,
    assignees: list[str] | None = None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"title": title}
    if body is not None:
        kwargs["body"] = body
    if labels:
        kwargs["labels"] = labels
    if assignees:
        kwargs["assignees"] = assignees
    try:
        with _proxied():
            issue = _repo(client(integration), repo).create_issue(**kwargs)
    except _ERRORS as exc:
        raise _error(f"create issue in {repo}", exc) from exc
    return {"number": issue.number, "htmlUrl": issue.html_url, "state": issue.state}


def dispatch_workflow(
    integration: ResolvedIntegration,
    *,
    repo: str,
    workflow: str,
    ref: str,
    inputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    try:
        with _proxied():
            wf = _repo(client(integration), repo).get_workflow(workflow)
            ok = wf.create_dispatch(ref, inputs or {})
    except _ERRORS as exc:
        raise _error(f"dispatch workflow {workflow} in {repo}", exc) from exc
    if not ok:
        raise ProviderError(f"GitHub refused to dispatch workflow {workflow} in {repo}")
    return {"dispatched": True, "workflow": workflow, "ref": ref}
