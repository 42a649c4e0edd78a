"""Alembic: head == the models, and upgrade/downgrade work on empty and populated databases."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from bot.db.migrate import current_revision, downgrade, head_revision, upgrade
from bot.db.models import Base

TABLES = {
    "messages", "guild_settings", "channel_settings", "feedback", "tag_actions",
    "summaries_posted", "privacy_optouts",
}


@pytest.fixture
def url(tmp_path):
    return f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"


def tables(url: str) -> set[str]:
    path = url.split(":///", 1)[1]
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    return {name for (name,) in rows} - {"alembic_version"}


def populate(url: str) -> None:
    path = url.split(":///", 1)[1]
    now = datetime.now(UTC).isoformat(" ")
    with sqlite3.connect(path) as c:
        c.execute(
            "INSERT INTO messages (message_id, guild_id, channel_id, author_id, created_at, label,"
            " confidence, scores, uncertain, model_version, attachment_only, classified_at)"
            " VALUES (1, 2, 3, 4, ?, 'question', 0.9, '{}', 0, 'v', 0, ?)", (now, now))
        c.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (2, ?)", (now,))
        c.execute("INSERT INTO channel_settings (guild_id, channel_id) VALUES (2, 3)")
        c.execute(
            "INSERT INTO feedback (guild_id, channel_id, message_id, moderator_id, verdict, source,"
            " created_at) VALUES (2, 3, 1, 5, 'correct', 'alert', ?)", (now,))
        c.execute(
            "INSERT INTO tag_actions (guild_id, channel_id, message_id, mode, action, label, applied,"
            " created_at) VALUES (2, 3, 1, 'react', 'react', 'question', 1, ?)", (now,))
        c.execute("INSERT INTO summaries_posted (guild_id, week_start, posted_at) VALUES (2, '2026-01-05', ?)", (now,))
        c.execute("INSERT INTO privacy_optouts (user_id, created_at) VALUES (6, ?)", (now,))


def test_head_schema_matches_the_models(url):
    upgrade(url)
    engine = create_engine(url.replace("+aiosqlite", ""))
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_upgrade_and_downgrade_an_empty_database(url):
    assert current_revision(url) is None
    upgrade(url)
    assert current_revision(url) == head_revision() and tables(url) == TABLES
    downgrade(url, "base")
    assert current_revision(url) is None and tables(url) == set()
    upgrade(url)
    assert tables(url) == TABLES


def test_upgrade_is_idempotent_and_downgrade_works_on_a_populated_database(url):
    upgrade(url)
    populate(url)
    upgrade(url)  # already at head: a no-op that keeps the data
    path = url.split(":///", 1)[1]
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM messages").fetchone() == (1,)
        # The schema enforces the contract's enums.
        with pytest.raises(sqlite3.IntegrityError):
            connection.execute("INSERT INTO channel_settings (guild_id, channel_id, tagging_mode)"
                               " VALUES (2, 4, 'loud')")
    downgrade(url, "base")
    assert tables(url) == set()
    upgrade(url)
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM messages").fetchone() == (0,)


def test_no_table_has_a_text_column(url):
    upgrade(url)
    path = url.split(":///", 1)[1]
    with sqlite3.connect(path) as connection:
        for table in TABLES:
            columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            assert not columns & {"content", "text", "body", "message_text"}, table
