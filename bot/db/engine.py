"""One async SQLite engine per process, with the pragmas the bot relies on.

WAL lets the summary/stat queries read while the writer writes; `busy_timeout` makes a
briefly locked database wait (in aiosqlite's thread, never on the event loop) before the
writer's own retry-with-backoff takes over.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class DatabaseError(RuntimeError):
    """The database cannot be used (message says what to fix)."""


def sqlite_path(database_url: str) -> Path | None:
    """The file behind a SQLite URL, or None for an in-memory database."""
    url = make_url(database_url)
    name = url.database
    if not name or name == ":memory:" or name.startswith("file::memory:"):
        return None
    return Path(name)


def ensure_writable(database_url: str) -> Path | None:
    """Create the database's directory and prove we can write there; raise DatabaseError if not.

    Runs synchronously at start-up, before the event loop matters.
    """
    path = sqlite_path(database_url)
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=5)
        try:
            connection.execute("CREATE TABLE IF NOT EXISTS _write_probe (x INTEGER)")
            connection.execute("DROP TABLE _write_probe")
            connection.commit()
        finally:
            connection.close()
    except (OSError, sqlite3.Error) as exc:
        raise DatabaseError(
            f"database {path} is not writable ({exc}); fix DATABASE_URL or the directory's permissions"
        ) from exc
    return path


def create_engine(database_url: str, *, busy_timeout_ms: int = 2_000, echo: bool = False) -> AsyncEngine:
    """An AsyncEngine whose every connection gets WAL, busy_timeout and foreign keys."""
    engine = create_async_engine(database_url, echo=echo, connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if sqlite_path(database_url) is not None:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
