"""Plans and their limits, in one table. Stripe billing (a later issue) only switches the plan."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    name: str
    monthly_executions: int
    requests_per_minute_per_key: int
    requests_per_minute_per_org: int
    concurrency: int
    retention_days: int


PLANS: dict[str, Plan] = {
    "free": Plan("free", 1_000, 100, 300, 5, 7),
    "pro": Plan("pro", 50_000, 1_000, 3_000, 25, 30),
    "business": Plan("business", 500_000, 5_000, 15_000, 100, 90),
    "enterprise": Plan("enterprise", 10_000_000, 50_000, 150_000, 500, 365),
}


def get_plan(name: str) -> Plan:
    return PLANS.get(name, PLANS["free"])
