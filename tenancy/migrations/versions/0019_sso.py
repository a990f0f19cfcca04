"""single sign-on: organizations' OpenID Connect settings, linked identities, one-time
sign-in tickets, sessions bound to one organization; organizations deleted by their owner

Revision ID: 0019_sso
Revises: 0017_suspended_runs
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019_sso"
down_revision: str | None = "0017_suspended_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID = sa.String(length=36)


def _org_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id"],
        ["organizations.id"],
        name=f"fk_{table}_organization_id_organizations",
        ondelete="CASCADE",
    )


def _user_fk(
    table: str, column: str = "user_id", ondelete: str = "CASCADE"
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.id"], name=f"fk_{table}_{column}_users", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "auth_tickets",
        sa.Column("id", ID, nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("organization_id", ID, nullable=True),
        sa.Column("data", JSON, nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _user_fk("auth_tickets"),
        _org_fk("auth_tickets"),
        sa.PrimaryKeyConstraint("id", name="pk_auth_tickets"),
        sa.UniqueConstraint("token_hash", name="uq_auth_tickets_token_hash"),
    )
    op.create_index("ix_auth_tickets_expires_at", "auth_tickets", ["expires_at"])
    op.create_table(
        "sso_configs",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=300), nullable=False),
        sa.Column("client_secret_enc", sa.Text(), nullable=False),
        sa.Column("allowed_domains", JSON, nullable=False),
        sa.Column("default_role", sa.String(length=20), nullable=False),
        sa.Column("updated_by", ID, nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        _org_fk("sso_configs"),
        _user_fk("sso_configs", "updated_by", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_sso_configs"),
        sa.UniqueConstraint("organization_id", name="uq_sso_configs_organization_id"),
    )
    op.create_table(
        "sso_identities",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_login_at", sa.BigInteger(), nullable=True),
        _user_fk("sso_identities"),
        _org_fk("sso_identities"),
        sa.PrimaryKeyConstraint("id", name="pk_sso_identities"),
        sa.UniqueConstraint(
            "organization_id",
            "issuer",
            "subject",
            name="uq_sso_identities_organization_id_issuer_subject",
        ),
    )
    op.create_index("ix_sso_identities_user_id", "sso_identities", ["user_id"])
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("organization_id", ID, nullable=True))
        batch_op.create_foreign_key(
            "fk_user_sessions_organization_id_organizations",
            "organizations",
            ["organization_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(
            "fk_user_sessions_organization_id_organizations", type_="foreignkey"
        )
        batch_op.drop_column("organization_id")
    op.drop_index("ix_sso_identities_user_id", table_name="sso_identities")
    op.drop_table("sso_identities")
    op.drop_table("sso_configs")
    op.drop_index("ix_auth_tickets_expires_at", table_name="auth_tickets")
    op.drop_table("auth_tickets")
