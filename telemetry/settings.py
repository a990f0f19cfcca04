"""Telemetry settings (prefix ``ORBIN_``), never built at import time."""

from __future__ import annotations

from functools import lru_cache

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORBIN_", extra="ignore")

    # Set: /metrics answers only `Authorization: Bearer <token>`.
    metrics_token: SecretStr | None = None
    # The worker's own HTTP port for /metrics, /healthz and /readyz (0: not served).
    worker_metrics_port: int = 0
    worker_metrics_host: str = "127.0.0.1"
    log_format: str = "text"  # "json": one JSON object per line, with org/run/step ids


@lru_cache
def get_telemetry_settings() -> TelemetrySettings:
    return TelemetrySettings()


def reset_telemetry_settings() -> None:
    get_telemetry_settings.cache_clear()
