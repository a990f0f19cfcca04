"""Plans and their limits: the built-in table, or an operator's file (``ORBIN_PLANS_FILE``).

The file is JSON or YAML: ``{"plans": {"<name>": {"monthlyExecutions", "requestsPerMinutePerKey",
"requestsPerMinutePerOrg", "concurrency", "retentionDays", "members"?, "integrations"?,
"stripeLookupKey"?, "overage"?}}}``. It replaces the built-in table whole and must name a
``free`` plan (where a cancelled subscription returns). A bad file is a ``PlansFileError``
naming the file, the plan and the field, raised when the platform starts.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tenancy.errors import InvalidInput

DEFAULT_PLAN = "free"


@dataclass(frozen=True)
class Plan:
    name: str
    monthly_executions: int
    requests_per_minute_per_key: int
    requests_per_minute_per_org: int
    concurrency: int
    retention_days: int
    members: int | None = None
    integrations: int | None = None
    stripe_lookup_key: str | None = None
    overage: bool = False  # past the monthly limit, runs go on and are metered
    ai_requests_per_minute: int = 10

    @property
    def lookup_key(self) -> str:
        """The Stripe price's ``lookup_key`` for this plan (default: the plan's name)."""
        return self.stripe_lookup_key or self.name


BUILT_IN: dict[str, Plan] = {
    "free": Plan("free", 1_000, 100, 300, 5, 7, members=5, integrations=5),
    "pro": Plan(
        "pro", 50_000, 1_000, 3_000, 25, 30, members=20, integrations=20, ai_requests_per_minute=60
    ),
    "business": Plan("business", 500_000, 5_000, 15_000, 100, 90, ai_requests_per_minute=300),
    "enterprise": Plan(
        "enterprise",
        10_000_000,
        50_000,
        150_000,
        500,
        365,
        overage=True,
        ai_requests_per_minute=1_000,
    ),
}


class PlansFileError(InvalidInput):
    code = "invalid_plans_file"


class _PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    monthlyExecutions: int = Field(ge=0)  # noqa: N815 - the file's own spelling
    requestsPerMinutePerKey: int = Field(ge=1)  # noqa: N815
    requestsPerMinutePerOrg: int = Field(ge=1)  # noqa: N815
    concurrency: int = Field(ge=1)
    retentionDays: int = Field(ge=1)  # noqa: N815
    members: int | None = Field(default=None, ge=1)
    integrations: int | None = Field(default=None, ge=0)
    stripeLookupKey: str | None = Field(default=None, min_length=1, max_length=200)  # noqa: N815
    overage: bool = False
    aiRequestsPerMinute: int = Field(default=10, ge=0)  # noqa: N815


class _PlansIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plans: dict[str, _PlanIn] = Field(min_length=1)


def parse_plans(text: str, *, source: str = "plans file") -> dict[str, Plan]:
    """Parse and validate a plans document (JSON, or YAML when it is not JSON)."""
    try:
        raw = json.loads(text)
    except ValueError:
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PlansFileError(f"{source} is neither JSON nor YAML: {exc}") from exc
    try:
        doc = _PlansIn.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise PlansFileError(f"{source} is not valid: {problems}") from exc
    if DEFAULT_PLAN not in doc.plans:
        raise PlansFileError(f"{source} must define a {DEFAULT_PLAN!r} plan")
    plans = {
        name: Plan(
            name=name,
            monthly_executions=p.monthlyExecutions,
            requests_per_minute_per_key=p.requestsPerMinutePerKey,
            requests_per_minute_per_org=p.requestsPerMinutePerOrg,
            concurrency=p.concurrency,
            retention_days=p.retentionDays,
            members=p.members,
            integrations=p.integrations,
            stripe_lookup_key=p.stripeLookupKey,
            overage=p.overage,
            ai_requests_per_minute=p.aiRequestsPerMinute,
        )
        for name, p in doc.plans.items()
    }
    keys = [p.lookup_key for p in plans.values()]
    if len(set(keys)) != len(keys):
        raise PlansFileError(f"{source}: two plans share a stripeLookupKey")
    return plans


_lock = threading.Lock()
_loaded: dict[str, Plan] | None = None


def load_plans() -> dict[str, Plan]:
    """The plans in force: ``ORBIN_PLANS_FILE`` if set (read once per process), else built-in."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            from tenancy.config import get_settings

            path = get_settings().plans_file
            if path is None:
                _loaded = dict(BUILT_IN)
            else:
                try:
                    text = Path(path).read_text()
                except OSError as exc:
                    raise PlansFileError(f"ORBIN_PLANS_FILE {path}: {exc.strerror}") from exc
                _loaded = parse_plans(text, source=f"ORBIN_PLANS_FILE {path}")
    return _loaded


def reset_plans() -> None:
    """Forget the loaded plans (tests that change ORBIN_PLANS_FILE)."""
    global _loaded
    with _lock:
        _loaded = None


def get_plan(name: str) -> Plan:
    plans = load_plans()
    return plans.get(name) or plans[DEFAULT_PLAN]


def require_plan(name: str) -> Plan:
    plans = load_plans()
    if name not in plans:
        raise InvalidInput(
            f"unknown plan {name!r}; the plans are {', '.join(plans)}",
            details=[{"field": "plan", "allowed": list(plans)}],
        )
    return plans[name]


def plan_for_lookup_key(lookup_key: str | None) -> Plan | None:
    for plan in load_plans().values():
        if lookup_key and plan.lookup_key == lookup_key:
            return plan
    return None


# The name kept for callers that read the table directly.
PLANS = BUILT_IN
