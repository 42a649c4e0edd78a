"""Every knob of the bot, read once from the environment and `.env`.

One class so `.env.example`, the docs and the code cannot drift apart (a test checks that
every field here is listed in `.env.example`). There is deliberately no `store_text` option:
the bot stores ids, labels and scores, never message text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _parse_id_list(value: object) -> object:
    """Accept `1,2,3`, `[1, 2]` (JSON) or a real list for id-list fields."""
    if isinstance(value, str):
        text = value.strip().strip("[]")
        return [part.strip().strip("\"'") for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Runtime configuration; field names map to upper-case env vars (`DISCORD_TOKEN`, ...)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # Discord
    discord_token: SecretStr | None = None
    command_prefix: str = "!"
    owner_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    guild_ids_for_sync: Annotated[list[int], NoDecode] = Field(default_factory=list)

    # Storage
    database_url: str = "sqlite+aiosqlite:///data/bot.db"
    db_batch_size: int = Field(default=200, ge=1, le=10_000)
    db_flush_interval_ms: int = Field(default=20, ge=1, le=60_000)
    db_busy_timeout_ms: int = Field(default=2_000, ge=0, le=600_000)
    default_retention_days: int = Field(default=90, ge=1, le=3650)

    # Model and micro-batcher
    model_dir: Path = Path("models/default")
    max_batch_tokens: int = Field(default=512, ge=16)
    max_wait_ms: float = Field(default=5.0, ge=0)
    max_queue: int = Field(default=10_000, ge=1)
    model_sessions: int = Field(default=2, ge=1, le=64)
    model_threads: int = Field(default=1, ge=1, le=256)

    # Backfill after start-up / reconnect
    backfill_per_channel: int = Field(default=500, ge=0, le=100_000)
    backfill_concurrency: int = Field(default=2, ge=1, le=16)
    backfill_archived_threads: int = Field(default=50, ge=0, le=10_000)

    # Observability
    log_level: str = "INFO"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65_535)

    @field_validator("owner_ids", "guild_ids_for_sync", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        return _parse_id_list(value)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("database_url")
    @classmethod
    def _async_sqlite_only(cls, value: str) -> str:
        if not value.startswith("sqlite+aiosqlite://"):
            raise ValueError("must be an async SQLite URL like sqlite+aiosqlite:///data/bot.db")
        return value

    @property
    def token_value(self) -> str | None:
        """The raw token, or None when unset/blank (only the connect call should use this)."""
        if self.discord_token is None:
            return None
        token = self.discord_token.get_secret_value().strip()
        return token or None
