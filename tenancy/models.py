"""The PRD's data model as SQLAlchemy tables. Timestamps are ms since the epoch, as in the PRD."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenancy.clock import new_id, now_ms
from tenancy.db import Base, JSONType

ID = String(36)
Timestamp = BigInteger
AutoPK = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Mapped[str]:
    return mapped_column(ID, primary_key=True, default=new_id)


def _org() -> Mapped[str]:
    return mapped_column(ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)


def _created() -> Mapped[int]:
    return mapped_column(Timestamp, nullable=False, default=now_ms)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    plan: Mapped[str] = mapped_column(String(20), default="free")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(100), index=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(100))
    billing_email: Mapped[str | None] = mapped_column(String(320))
    usage_limit_executions: Mapped[int] = mapped_column(Integer, default=1000)
    usage_current_executions: Mapped[int] = mapped_column(Integer, default=0)
    usage_reset_at: Mapped[int] = mapped_column(Timestamp, default=0)
    # Billing (tenancy/billing.py): subscription status, the period's start when a subscription
    # sets it, the Stripe time of the last subscription change applied, the Prefect pool's limit.
    billing_status: Mapped[str | None] = mapped_column(String(20))
    billing_period_start: Mapped[int | None] = mapped_column(Timestamp)
    billing_event_at: Mapped[int | None] = mapped_column(Timestamp)
    pool_concurrency: Mapped[int | None] = mapped_column(Integer)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Encrypted with tenancy.crypto; the previous secret verifies until its grace period ends.
    webhook_secret_enc: Mapped[str | None] = mapped_column(Text)
    webhook_secret_prev_enc: Mapped[str | None] = mapped_column(Text)
    webhook_secret_prev_until: Mapped[int | None] = mapped_column(Timestamp)
    # Deleted by its owner: kept (with its audit trail) but reachable by no one; slug reserved.
    deleted_at: Mapped[int | None] = mapped_column(Timestamp)
    created_at: Mapped[int] = _created()
    updated_at: Mapped[int] = mapped_column(Timestamp, default=now_ms, onupdate=now_ms)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = _id()
    external_id: Mapped[str | None] = mapped_column(String(200), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    mfa_secret_enc: Mapped[str | None] = mapped_column(Text)
    mfa_enabled_at: Mapped[int | None] = mapped_column(Timestamp)
    # SHA-256 hashes of the unused recovery codes.
    mfa_recovery_hashes: Mapped[list[str] | None] = mapped_column(JSONType)
    failed_signins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[int | None] = mapped_column(Timestamp)
    notification_preferences: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[int] = _created()
    updated_at: Mapped[int] = mapped_column(Timestamp, default=now_ms, onupdate=now_ms)


class OrganizationMember(Base):
    __tablename__ = "organization_members"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)

    id: Mapped[str] = _id()
    organization_id: Mapped[str] = _org()
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    invited_by: Mapped[str | None] = mapped_column(ID, ForeignKey("users.id"))
    joined_at: Mapped[int] = mapped_column(Timestamp, default=now_ms)


class Invitation(Base):
    __tablename__ = "invitations"

    id: Mapped[str] = _id()
    organization_id: Mapped[str] = _org()
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(20))
    invited_by: Mapped[str] = mapped_column(ID, ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[int] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    accepted_at: Mapped[int | None] = mapped_column(Timestamp)
    created_at: Mapped[int] = _created()


class UserSession(Base):
    """A signed-in session: the bearer token ``ses_...`` is shown once, stored as SHA-256."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = _id()
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = _created()
    last_seen_at: Mapped[int] = mapped_column(Timestamp, default=now_ms)
    expires_at: Mapped[int] = mapped_column(Timestamp)
    revoked_at: Mapped[int | None] = mapped_column(Timestamp)
    user_agent: Mapped[str | None] = mapped_column(String(500))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    # Set for a single sign-on session: it acts in that organization only.
    organization_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE")
    )


class MailItem(Base):
    """A message to send, stored with the change that caused it; sent after the commit."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_pending", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(AutoPK, primary_key=True, autoincrement=True)
    organization_id: Mapped[str | None] = mapped_column(ID)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    queued_at: Mapped[int] = mapped_column(Timestamp, default=now_ms)
    sent_at: Mapped[int | None] = mapped_column(Timestamp)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = _id()
    organization_id: Mapped[str] = _org()
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_four_chars: Mapped[str] = mapped_column(String(4))
    permissions: Mapped[list[str] | None] = mapped_column(JSONType)
    last_used_at: Mapped[int | None] = mapped_column(Timestamp)
    expires_at: Mapped[int | None] = mapped_column(Timestamp)
    created_by: Mapped[str | None] = mapped_column(ID, ForeignKey("users.id"))
    created_at: Mapped[int] = _created()
    revoked_at: Mapped[int | None] = mapped_column(Timestamp)

    __table_args__ = (Index("ix_api_keys_org", "organization_id"),)


class Workflow(Base):
    __tablename__ = "workflows"
    __table_args__ = (
        UniqueConstraint("organization_id", "slug"),
        Index("ix_workflows_org_status", "organization_id", "status"),
    )

    id: Mapped[str] = _id()
    organization_id: Mapped[str] = _org()
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSONType)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Event triggers are matched in SQL first: the exact type, or the prefix before a '*'.
    trigger_type: Mapped[str] = mapped_column(String(20))
    trigger_event_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    code_hash: Mapped[str | None] = mapped_column(String(64))
    entrypoint: Mapped[str | None] = mapped_column(String(500))
    prefect_deployment_id: Mapped[str | None] = mapped_column(String(36))
    # The version whose schedule was last written to Prefect (schedule triggers; see
    # orbin_flows/schedules.py); a provider-issued webhook signing secret, encrypted.
    schedule_synced_version: Mapped[int | None] = mapped_column(Integer)
    webhook_secret_enc: Mapped[str | None] = mapped_column(Text)
    # Who: a user (created_by / updated_by), or an API key (..._key_id); see tenancy/actors.py.
    created_by: Mapped[str | None] = mapped_column(ID, ForeignKey("users.id"))
    updated_by: Mapped[str | None] = mapped_column(ID, ForeignKey("users.id"))
    created_by_key_id: Mapped[str | None] = mapped_column(ID)
    updated_by_key_id: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[int] = _created()
    updated_at: Mapped[int] = mapped_column(Timestamp, default=now_ms, onupdate=now_ms)


Index(
    "ix_workflows_event_trigger",
    Workflow.organization_id,
    Workflow.trigger_type,
    Workflow.trigger_event_key,
)


class WorkflowVersion(Base):
    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version"),)

    id: Mapped[str] = _id()
    organization_id: Mapped[str] = _org()
    workflow_id: Mapped[str] = mapped_column(ID, ForeignKey("workflows.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(ID, ForeignKey("users.id"))
    created_by_key_id: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[int] = _created()


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("organization_id", "event_id"),
        Index("ix_events_org_created", "organization_id", "created_at"),
        Index("ix_events_org_type", "organization_id", "event_type"),
        Index("ix_events_org_status", "organization_id", "status"),
        Index("ix_events_org_id", "organization_id", "id"),
    )

    id: Mapped[str] = _id()
    organization_id: Mapped[str] = _org()
    event_type: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200), default="api")
    payload: Mapped[Any] = mapped_column(JSONType)
    processed_at: Mapped[int | None] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    run_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    api_key_id: Mapped[str | None] = mapped_column(ID)
    # The workflow a webhook event was sent to (replays start that one workflow again).
    workflow_id: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[int] = _created()


class WorkflowRun(Base):
    __tablename__ = "workflow_runs"
    __table_args__ = (
        Index("ix_workflow_runs_org_created", "organization_id", "created_at"),
        Index("ix_workflow_runs_org_status", "organization_id", "status"),
        Index("ix_workflow_runs_workflow_created", "workflow_id", "created_at"),
        Index("ix_workflow_runs_status_lease", "status", "lease_expires_at"),
        # Keyset pages of one org's runs, newest first (the id is time-ordered).
        Index("ix_workflow_runs_org_id", "organization_id", "id"),
        Index("ix_workflow_runs_org_status_id", "organization_id", "status", "id"),
    )

    id: Mapped[str] = _id()
    organization_id: Mapped[str] = _org()
    workflow_id: Mapped[str] = mapped_column(ID, ForeignKey("workflows.id", ondelete="CASCADE"))
    workflow_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    trigger_type: Mapped[str] = mapped_column(String(20))
    trigger_data: Mapped[Any] = mapped_column(JSONType)
    result: Mapped[Any | None] = mapped_column(JSONType)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    event_id: Mapped[str | None] = mapped_column(ID, ForeignKey("events.id"), index=True)
    parent_run_id: Mapped[str | None] = mapped_column(ID)
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[int | None] = mapped_column(Timestamp)
    resume_at: Mapped[int | None] = mapped_column(Timestamp)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[int | None] = mapped_column(Timestamp)
    completed_at: Mapped[int | None] = mapped_column(Timestamp)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = _created()
    trace_parent: Mapped[str | None] = mapped_column(String(55))  # W3C, when traced
    # Who started it (a user, or an API key); none for schedules, webhooks and emit steps.
    created_by: Mapped[str | None] = mapped_column(ID)
    created_by_key_id: Mapped[str | None] = mapped_column(ID)


class StepExecution(Base):
    __tablename__ = "step_executions"
    __table_args__ = (
        Index("ix_step_executions_run_step", "workflow_run_id", "step_id"),
        Index("ix_step_executions_org_status", "organization_id", "status"),
    )

    id: Mapped[str] = _id()
    organization_id: Mapped[str] = _org()
    workflow_run_id: Mapped[str] = mapped_column(
        ID, ForeignKey("workflow_runs.id", ondelete="CASCADE"), index=True
    )
    step_id: Mapped[str] = mapped_column(String(100))
    step_name: Mapped[str] = mapped_column(String(200))
    step_type: Mapped[str] = mapped_column(String(20), default="action")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    input: Mapped[Any | None] = mapped_column(JSONType)
    output: Mapped[Any | None] = mapped_column(JSONType)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    next_retry_at: Mapped[int | None] = mapped_column(Timestamp)
    started_at: Mapped[int | None] = mapped_column(Timestamp)
    completed_at: Mapped[int | None] = mapped_column(Timestamp)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = _created()


class OutboxItem(Base):
    """A run waiting to be handed to Prefect: written in the same transaction as the run."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_available", "status", "available_at"),)

    id: Mapped[int] = mapped_column(AutoPK, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = _org()
    run_id: Mapped[str] = mapped_column(ID, ForeignKey("workflow_runs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[int] = mapped_column(Timestamp, default=now_ms)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = _created()


class Integration(Base):
    __tablename__ = "integrations"
    __table_args__ = (
        Index("ix_integrations_org_provider", "organization_id", "provider"),
        UniqueConstraint("organization_id", "name", name="uq_integrations_org_name"),
    )

    id: Mapped[str] = _id()
    organization_id: Mapped[str] = _org()
    provider: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    credentials: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="active")
    last_sync_at: Mapped[int | None] = mapped_column(Timestamp)
    last_used_at: Mapped[int | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(Text)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    connected_by: Mapped[str | None] = mapped_column(ID, ForeignKey("users.id"))
    created_at: Mapped[int] = _created()
    updated_at: Mapped[int] = mapped_column(Timestamp, default=now_ms, onupdate=now_ms)


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (Index("ix_audit_logs_org_created", "organization_id", "created_at"),)

    id: Mapped[str] = _id()
    organization_id: Mapped[str] = _org()
    actor_id: Mapped[str | None] = mapped_column(ID, ForeignKey("users.id"), index=True)
    actor_type: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str] = mapped_column(String(50))
    resource_id: Mapped[str | None] = mapped_column(String(100))
    metadata_: Mapped[Any | None] = mapped_column("metadata", JSONType)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[int] = _created()


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read"),)

    id: Mapped[str] = _id()
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    organization_id: Mapped[str] = _org()
    type: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    read: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[int] = _created()


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[str] = _id()
    organization_id: Mapped[str] = _org()
    workflow_run_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("workflow_runs.id", ondelete="CASCADE"), index=True
    )
    step_execution_id: Mapped[str | None] = mapped_column(ID)
    name: Mapped[str] = mapped_column(String(300))
    mime_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[int] = _created()


class ChangeRecord(Base):
    """A change announced to live views, kept briefly so a reconnecting client can resume and
    so that processes without LISTEN/NOTIFY (SQLite) can tail it."""

    __tablename__ = "change_log"
    __table_args__ = (
        Index("ix_change_log_org_id", "organization_id", "id"),
        Index("ix_change_log_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(AutoPK, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(ID, nullable=False)
    kind: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[int] = _created()
