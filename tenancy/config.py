"""Settings, read from the environment (prefix ``ORBIN_``) and never built at import time."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORBIN_", extra="ignore")

    home: Path = Path("./.orbin")
    database_url: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 1
    dashboard_port: int = 8501
    prefect_port: int = 4200
    prefect_database_url: str | None = None
    redis_url: str | None = None
    # Egress policy of tenant-caused connections (tenancy/egress): extra allowed / denied
    # targets, comma-separated host, host:port, host:lo-hi, CIDR.
    egress_allow: str | None = None
    egress_deny: str | None = None
    # The base of every URL Orbin hands out: the API's (webhook URLs, OAuth redirect URIs)
    # and the dashboard's (links in mail). Unset: where this machine serves them.
    public_url: str | None = None
    dashboard_url: str | None = None
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs sessions and encrypts secrets; generated under home if unset",
    )
    max_body_bytes: int = 1024 * 1024
    max_json_depth: int = 32
    max_batch_events: int = 100
    trigger_cache_seconds: float = Field(
        default=1.0, description="How long ingestion remembers which workflows an event starts"
    )
    ingest_linger_ms: float = Field(
        default=2.0,
        ge=0,
        le=100,
        description="Under load, how long an API process's ingest writer waits for more "
        "requests to write together",
    )
    ingest_queue_max_events: int = Field(
        default=10_000,
        ge=1,
        description="Events an API process's ingest writer may hold unwritten; beyond, 503",
    )
    dispatch_max_attempts: int = Field(
        default=25,
        ge=1,
        description="Tries to create a run's flow run when Prefect answers with an error; "
        "then the run fails and its event is dead-lettered with the reason",
    )
    bad_key_requests_per_minute: int = Field(
        default=60, ge=1, description="Requests with a bad API key one client address may send"
    )
    emit_max_depth: int = Field(
        default=16,
        ge=1,
        description="Runs an emit chain may span; deeper, the event is dead-lettered",
    )
    worker_concurrency: int = 32
    worker_poll_seconds: float = 0.5
    worker_lease_seconds: int = 30
    # On SIGTERM: how long a worker lets its runs finish before handing the rest over, and
    # how long an API process waits for the requests in flight.
    worker_shutdown_seconds: float = 20.0
    api_shutdown_seconds: float = 20.0
    # Delays up to this long wait on the worker; longer ones suspend the run (no slot held).
    inline_delay_seconds: float = 30.0
    # Step outputs larger than this are stored out of line (orbin_flows/results.py): in a
    # folder under home, or in S3 (a prefect-aws S3Bucket per organization) when a bucket is
    # set; the step row keeps a reference. Operator-configured, not a tenant connection.
    max_inline_output_bytes: int = Field(default=64 * 1024, ge=1024)
    results_s3_bucket: str | None = None
    results_s3_prefix: str = "orbin-results"
    results_s3_endpoint_url: str | None = None
    results_s3_region: str | None = None
    # Each finished run leaves a markdown summary and a table of its steps in Prefect.
    run_artifacts: bool = True
    log_level: str = "INFO"
    # Live streams (GET /v1/stream): the change log kept for resuming clients, the SQLite
    # tail's poll interval, and the heartbeat comment's period.
    change_retention_seconds: int = 3600
    stream_poll_seconds: float = 0.02
    stream_heartbeat_seconds: float = 15.0
    # Billing (README "Billing"): the plans file, and Stripe (unset secret key: local mode).
    plans_file: Path | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("STRIPE_SECRET_KEY", "ORBIN_STRIPE_SECRET_KEY")
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRET", "ORBIN_STRIPE_WEBHOOK_SECRET"),
    )
    billing_return_url: str | None = None
    stripe_meter_event_name: str = "orbin_executions"
    retention_batch_size: int = 500
    # Maintenance flows (README "Operations"): Prefect deployments on these intervals, run by
    # one of the workers per slot; finished outbox items are kept this long.
    maintenance_retention_seconds: int = Field(default=300, ge=5)
    maintenance_change_log_seconds: int = Field(default=60, ge=5)
    maintenance_outbox_seconds: int = Field(default=300, ge=5)
    outbox_retention_seconds: int = Field(default=3600, ge=0)

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_home / 'orbin.db'}"

    @property
    def resolved_prefect_database_url(self) -> str:
        if self.prefect_database_url:
            return self.prefect_database_url
        return f"sqlite+aiosqlite:///{self.resolved_home / 'prefect' / 'prefect.db'}"

    @property
    def prefect_api_url(self) -> str:
        """``PREFECT_API_URL`` when set (an external server), else the one Orbin starts."""
        return os.environ.get("PREFECT_API_URL") or f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def manages_prefect_server(self) -> bool:
        return not os.environ.get("PREFECT_API_URL")

    @property
    def api_url(self) -> str:
        """``ORBIN_PUBLIC_URL``, else the API's bind address (127.0.0.1 for a wildcard)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.api_host if self.api_host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.api_port}"

    @property
    def public_dashboard_url(self) -> str:
        """``ORBIN_DASHBOARD_URL``, else the dashboard on this machine."""
        if self.dashboard_url:
            return self.dashboard_url.rstrip("/")
        return f"http://127.0.0.1:{self.dashboard_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
    from tenancy.plans import reset_plans

    reset_plans()
