"""`orbin user ...` and `orbin member ...`: operators give people access without Python."""

from __future__ import annotations

import secrets

import typer

from orbin_cli.choices import listing, one_of
from orbin_cli.errors import transaction
from tenancy.principal import ROLES

user_app = typer.Typer(no_args_is_help=True, help="User accounts: create one, reset its password.")
member_app = typer.Typer(
    no_args_is_help=True, help="Members of an organization and their roles: add, list, remove."
)

ROLE = one_of(ROLES, "role")
ROLE_HELP = f"what the member may do, {listing(ROLES)} (each may do more than the one before)"


EXIT = 1  # the exit code of a refused command


def _new_password() -> str:
    return secrets.token_urlsafe(12)


@user_app.command("create")
def user_create(
    email: str = typer.Option(..., help="the sign-in e-mail"),
    name: str = typer.Option(..., help="the display name"),
    org: str = typer.Option(None, help="also add the user to this organization (its slug)"),
    role: str = typer.Option("member", callback=ROLE, help=ROLE_HELP + ", with --org"),
) -> None:
    """Create an account with a generated password, printed once."""
    from tenancy.orgs import add_member, create_user, read_organization_by_slug

    password = _new_password()
    with transaction(EXIT) as session:
        organization = read_organization_by_slug(session, org) if org else None
        user = create_user(session, email=email, name=name, password=password)
        if organization is not None:
            add_member(session, organization_id=organization.id, user_id=user.id, role=role)
    typer.echo(f"created {email}" + (f" as {role} of {org}" if org else ""), err=True)
    typer.echo(f"password: {password}")


@user_app.command("reset-password")
def user_reset_password(email: str = typer.Option(..., help="the account's e-mail")) -> None:
    """Set a new generated password (printed once) and end the account's sessions."""
    from tenancy.identity.accounts import set_password

    password = _new_password()
    with transaction(EXIT) as session:
        set_password(session, email, password)
    typer.echo(f"new password for {email} (shown once; its sessions are ended)", err=True)
    typer.echo(f"password: {password}")


@member_app.command("add")
def member_add(
    org: str = typer.Option(..., help="organization slug"),
    email: str = typer.Option(..., help="an existing user's e-mail (see user create)"),
    role: str = typer.Option("member", callback=ROLE, help=ROLE_HELP),
) -> None:
    """Add an existing user to an organization."""
    from tenancy.identity.accounts import user_by_email
    from tenancy.orgs import add_member, read_organization_by_slug

    with transaction(EXIT) as session:
        organization = read_organization_by_slug(session, org)
        user = user_by_email(session, email)
        add_member(session, organization_id=organization.id, user_id=user.id, role=role)
    typer.echo(f"{email} is now {role} of {org}")


@member_app.command("list")
def member_list(org: str = typer.Option(..., help="organization slug")) -> None:
    """List an organization's members: e-mail, role and name, one a line."""
    from tenancy.identity.members import read_members
    from tenancy.orgs import read_organization_by_slug
    from tenancy.principal import system_principal

    with transaction(EXIT) as session:
        o = read_organization_by_slug(session, org)
        for m, u in read_members(session, system_principal(o.id, o.slug, o.plan)):
            typer.echo(f"{u.email}\t{m.role}\t{u.name}")


@member_app.command("remove")
def member_remove(
    org: str = typer.Option(..., help="organization slug"),
    email: str = typer.Option(..., help="the member's e-mail"),
) -> None:
    """Remove a member from an organization (its last owner stays)."""
    from tenancy.identity.accounts import user_by_email
    from tenancy.identity.members import remove_member
    from tenancy.orgs import read_organization_by_slug
    from tenancy.principal import system_principal

    with transaction(EXIT) as session:
        o = read_organization_by_slug(session, org)
        user = user_by_email(session, email)
        remove_member(session, system_principal(o.id, o.slug, o.plan), user.id)
    typer.echo(f"{email} removed from {org}")
