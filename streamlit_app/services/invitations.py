"""Invitations: admins invite by e-mail (a one-time link in the mail outbox), see the pending
ones, resend or revoke them; the invitee opens the link, signs up or signs in, and joins.
Every rule (who may invite whom, one live link per address, expiry) is identity's."""

from __future__ import annotations

from dataclasses import dataclass

from streamlit_app.services.base import Actor, Outcome, act
from tenancy import org_queries
from tenancy.db import read_scope, session_scope
from tenancy.identity import invitations as inv
from tenancy.identity.sessions import revoke_session
from tenancy.principal import ROLE_RANK

InvitationPreview = inv.InvitationPreview


@dataclass(frozen=True)
class InvitationRow:
    id: str
    email: str
    role: str
    invited_by: str
    created_at: int
    expires_at: int


def roles_to_invite(my_role: str) -> list[str]:
    """The roles a member of ``my_role`` may give (identity refuses any other anyway)."""
    mine = ROLE_RANK.get(my_role, 0)
    return [r for r in sorted(ROLE_RANK, key=ROLE_RANK.__getitem__) if ROLE_RANK[r] <= mine]


def pending(actor: Actor) -> Outcome:
    def go(session, principal):  # type: ignore[no-untyped-def]
        rows = inv.read_invitations(session, principal)
        names = org_queries.read_user_names(session, user_ids={r.invited_by for r in rows})
        return [
            InvitationRow(
                r.id, r.email, r.role, names.get(r.invited_by, "?"), r.created_at, r.expires_at
            )
            for r in rows
        ]

    return act(actor, "", go)


def invite(actor: Actor, email: str, role: str) -> Outcome:
    return act(
        actor,
        f"Invitation sent to {email.strip()}.",
        lambda s, p: inv.create_invitation(s, p, email=email, role=role).id,
    )


def resend(actor: Actor, invitation_id: str) -> Outcome:
    return act(
        actor,
        "Invitation sent again with a new link (the old one no longer works).",
        lambda s, p: inv.resend_invitation(s, p, invitation_id).id,
    )


def revoke(actor: Actor, invitation_id: str) -> Outcome:
    return act(
        actor,
        "Invitation revoked: its link no longer works.",
        lambda s, p: inv.revoke_invitation(s, p, invitation_id).id,
    )


def preview(token: str) -> InvitationPreview:
    """The invitation of a link, for the invitee (NotFound, Gone: with their message)."""
    with read_scope() as session:
        return inv.preview_invitation(session, token)


def accept(token: str, *, name: str | None, password: str) -> str:
    """Join with the link; returns the invitee's e-mail, to sign in with as usual. The bearer
    session identity opens for API callers is ended at once: the dashboard has its own."""
    with session_scope() as session:
        done = inv.accept_invitation(session, token=token, name=name, password=password)
        revoke_session(session, done.session.token)
        return done.user.email
