"""AI settings, from the environment: the OpenAI SDK's own variables plus ``ORBIN_AI_*``."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AISettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORBIN_AI_", extra="ignore")

    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "ORBIN_AI_API_KEY")
    )
    base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "ORBIN_AI_BASE_URL")
    )
    model: str = "gpt-4o-mini"
    api: Literal["chat", "responses"] = Field(
        default="chat", description="chat completions (any compatible server) or responses"
    )
    json_mode: bool = Field(
        default=True, description="ask for response_format json_object (off for servers without)"
    )
    structured: bool = Field(
        default=False,
        description="ask for response_format json_schema (the answer's shape) instead of "
        "json_object, for servers that offer structured output",
    )
    stream: bool = False
    timeout_seconds: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    max_repairs: int = Field(default=2, ge=0, le=2)
    max_value_chars: int = Field(
        default=2_000, ge=50, description="step inputs/outputs longer than this are truncated"
    )
    max_prompt_chars: int = Field(default=4_000, ge=1)
    requests_per_minute: int | None = Field(
        default=None, ge=0, description="overrides the plan's AI requests per minute"
    )
    history_runs: int = Field(default=50, ge=1, le=1_000)

    @property
    def configured(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value())


def get_ai_settings() -> AISettings:
    return AISettings()
