"""The AI features' errors, each a kind of the domain error the API already maps to a status."""

from __future__ import annotations

from tenancy.errors import InvalidInput, LimitExceeded, Unavailable


class AINotConfigured(Unavailable):
    """503: no model server is configured."""

    code = "ai_not_configured"


class AIUpstreamError(Unavailable):
    """503: the model server failed, timed out or refused us after the SDK's retries."""

    code = "ai_upstream_error"


class AIRateLimited(LimitExceeded):
    """429: the organization's AI requests per minute are used up."""

    code = "ai_rate_limited"


class AIAnswerInvalid(InvalidInput):
    """422: the model's answer was still invalid after the repairs."""

    code = "ai_answer_invalid"
