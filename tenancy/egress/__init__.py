"""One egress policy for every outgoing connection a tenant can cause (see ``policy``)."""

from tenancy.egress.policy import Policy, canonical, is_internal, parse_rules
from tenancy.egress.transport import acheck, async_client, check, client, current_policy
from tenancy.errors import EgressRefused

__all__ = [
    "EgressRefused",
    "Policy",
    "acheck",
    "async_client",
    "canonical",
    "check",
    "client",
    "current_policy",
    "is_internal",
    "parse_rules",
]
