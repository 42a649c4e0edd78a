"""Settings: env + .env parsing, secrets, and `.env.example` documenting every field."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.app import RedactSecrets, configure_logging
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.fake-token-for-tests-only_0123456789"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No ambient env vars or .env file leak into these tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_match_the_contract():
    settings = Settings()
    assert settings.discord_token is None and settings.token_value is None
    assert settings.database_url == "sqlite+aiosqlite:///data/bot.db"
    assert settings.model_dir == Path("models/default")
    assert settings.metrics_port == 0 and settings.default_retention_days == 90
    assert settings.owner_ids == [] and settings.guild_ids_for_sync == []


def test_there_is_no_way_to_store_text(monkeypatch):
    assert not any("text" in name for name in Settings.model_fields)
    monkeypatch.setenv("STORE_TEXT", "true")
    assert not hasattr(Settings(), "store_text")


def test_env_and_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text(
        f"DISCORD_TOKEN={TOKEN}\nOWNER_IDS=1, 2\nMETRICS_PORT=9100\nLOG_LEVEL=debug\n"
    )
    monkeypatch.setenv("GUILD_IDS_FOR_SYNC", "[3, 4]")
    monkeypatch.setenv("METRICS_PORT", "9200")  # the environment beats .env
    settings = Settings()
    assert settings.token_value == TOKEN
    assert settings.owner_ids == [1, 2] and settings.guild_ids_for_sync == [3, 4]
    assert settings.metrics_port == 9200 and settings.log_level == "DEBUG"
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("name", "value"),
    [("LOG_LEVEL", "LOUD"), ("METRICS_PORT", "99999"), ("DATABASE_URL", "postgresql://x/y"),
     ("OWNER_IDS", "alice"), ("DB_BATCH_SIZE", "0")],
)
def test_bad_values_are_rejected(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_env_example_documents_every_field():
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.M))
    assert listed == {name.upper() for name in Settings.model_fields}


def test_logging_never_prints_the_token(monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    stream = io.StringIO()
    handler = configure_logging(Settings(), stream=stream)
    try:
        log = logging.getLogger("bot.test")
        log.warning("connecting with %s", TOKEN)
        log.error(f"header was 'Bot {TOKEN}'")
        try:
            raise RuntimeError(f"401 for token {TOKEN}")
        except RuntimeError:
            log.exception("login failed")
    finally:
        logging.getLogger().removeHandler(handler)
    output = stream.getvalue()
    assert TOKEN not in output
    assert output.count("[REDACTED]") == 3  # %-args, f-string, the traceback's exception line
    assert "RuntimeError" in output


def test_redaction_ignores_trivially_short_secrets():
    assert RedactSecrets([""]).redact("nothing to hide") == "nothing to hide"
