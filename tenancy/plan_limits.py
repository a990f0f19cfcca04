"""What a plan caps besides executions: its seats (``members``, pending invitations included)
and its ``integrations``. A plan without the figure has no cap. The organization's row is
locked while counting (PostgreSQL), so two concurrent invitations cannot both take the last
seat."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenancy.clock import now_ms
from tenancy.errors import PlanLimitReached
from tenancy.models import Integration, Invitation, Organization, OrganizationMember
from tenancy.plans import Plan, get_plan


def _locked_plan(session: Session, organization_id: str) -> tuple[Organization, Plan]:
    org = session.scalars(
        select(Organization).where(Organization.id == organization_id).with_for_update()
    ).one()
    return org, get_plan(org.plan)


def _require_room(plan: Plan, what: str, allowed: int, used: int) -> None:
    """PlanLimitReached when ``used`` leaves no room for one more under ``allowed``."""
    if used < allowed:
        return
    raise PlanLimitReached(
        f"the {plan.name} plan allows {allowed} {what}; this organization has {used}: "
        "upgrade the plan or free one first",
        details=[{"limit": what, "allowed": allowed, "used": used, "plan": plan.name}],
    )


def _count(session: Session, model: Any, organization_id: str, *where: Any) -> int:
    """How many rows of ``model`` the organization has (that match ``where``)."""
    return session.scalar(
        select(func.count())
        .select_from(model)
        .where(model.organization_id == organization_id, *where)
    )


def _members(session: Session, organization_id: str) -> int:
    return _count(session, OrganizationMember, organization_id)


def check_seat_for_invitation(session: Session, organization_id: str, email: str) -> None:
    """Members plus pending invitations (other than one to ``email``, which the new one
    replaces) must leave a seat."""
    _, plan = _locked_plan(session, organization_id)
    if plan.members is None:
        return
    pending = _count(
        session,
        Invitation,
        organization_id,
        Invitation.status == "pending",
        Invitation.expires_at > now_ms(),
        Invitation.email != email,
    )
    used = _members(session, organization_id) + pending
    _require_room(plan, "members (pending invitations included)", plan.members, used)


def check_seat_for_member(session: Session, organization_id: str) -> None:
    """A new member (an accepted invitation, an operator's `member add`) needs a seat."""
    _, plan = _locked_plan(session, organization_id)
    if plan.members is None:
        return
    _require_room(plan, "members", plan.members, _members(session, organization_id))


def check_integration_room(session: Session, organization_id: str) -> None:
    _, plan = _locked_plan(session, organization_id)
    if plan.integrations is None:
        return
    used = _count(session, Integration, organization_id)
    _require_room(plan, "integrations", plan.integrations, used)
