"""Settings, read from the environment (prefix ``ORBIN_``) and never built at import time."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
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
    public_url: str | None = None
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
    worker_concurrency: int = 32
    worker_poll_seconds: float = 0.5
    worker_lease_seconds: int = 30
    # Delays up to this long wait on the worker; longer ones suspend the run (no slot held).
    inline_delay_seconds: float = 30.0
    log_level: str = "INFO"
    # Live streams (GET /v1/stream): the change log kept for resuming clients, the SQLite
    # tail's poll interval, and the heartbeat comment's period.
    change_retention_seconds: int = 3600
    stream_poll_seconds: float = 0.02
    stream_heartbeat_seconds: float = 15.0

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
        return self.public_url or f"http://127.0.0.1:{self.api_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
