"""Helpers shared by the feature-cog tests: a scratch database and crafted rows."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Base, Feedback, MessageRecord, TagAction
from classifier import Prediction

LABELS = ("question", "answer", "comment", "bug_report", "suggestion", "spam", "toxic")

_ids = itertools.count(10_000)


@asynccontextmanager
async def scratch_db(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A fresh SQLite file with every table (created from the models, not migrations)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'features.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def at(text: str) -> datetime:
    """'2026-03-02 10:00' -> aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def message_row(
    *,
    guild_id: int,
    channel_id: int,
    created_at: datetime,
    label: str | None = "comment",
    confidence: float = 0.9,
    uncertain: bool = False,
    author_id: int = 1,
    parent_id: int | None = None,
    reply_to_id: int | None = None,
    message_id: int | None = None,
    attachment_only: bool = False,
) -> MessageRecord:
    return MessageRecord(
        message_id=message_id if message_id is not None else next(_ids),
        guild_id=guild_id,
        channel_id=channel_id,
        parent_id=parent_id,
        author_id=author_id,
        reply_to_id=reply_to_id,
        created_at=created_at,
        edited_at=None,
        label=None if attachment_only else label,
        confidence=None if attachment_only else confidence,
        scores=None if attachment_only else {label: confidence},
        uncertain=uncertain,
        model_version="test-1",
        attachment_only=attachment_only,
        classified_at=created_at,
    )


def tag_action(**fields: Any) -> TagAction:
    fields.setdefault("mode", "react")
    return TagAction(**fields)


def feedback(**fields: Any) -> Feedback:
    return Feedback(**fields)


# ----------------------------------------------------------------- scripted predictions

_MARKER = re.compile(r"^\[(?P<label>[a-z_]+)(?: (?P<confidence>[0-9.]+))?\]")


class ScriptedBatcher:
    """Stands in for the MicroBatcher so tests choose the prediction: a text starting with
    `[spam 0.97]` is predicted as spam with confidence 0.97; anything else is a 0.9 comment.
    The real pipeline, writer, dispatch and cogs run unchanged around it."""

    queue_depth = 0

    def __init__(
        self, labels: tuple[str, ...], thresholds: dict[str, float], real: Any = None, version: str = "scripted-1"
    ) -> None:
        self.real = real  # the bot's own batcher, still closed on shutdown
        self.labels = labels
        self.thresholds = thresholds
        self.version = version
        self.texts: list[str] = []

    def predict(self, text: str) -> Prediction:
        match = _MARKER.match(text)
        label = match["label"] if match else "comment"
        confidence = float(match["confidence"]) if match and match["confidence"] else 0.9
        rest = (1.0 - confidence) / max(1, len(self.labels) - 1)
        scores = {name: (confidence if name == label else rest) for name in self.labels}
        uncertain = confidence < self.thresholds.get(label, 0.5)
        return Prediction(
            label=label,
            confidence=confidence,
            scores=scores,
            uncertain=uncertain,
            model_version=self.version,
            labels=() if uncertain else (label,),
        )

    async def classify(self, text: str) -> Prediction:
        self.texts.append(text)
        return self.predict(text)

    async def classify_many(self, texts: Sequence[str]) -> list[Prediction]:
        return [await self.classify(text) for text in texts]

    async def close(self) -> None:
        if self.real is not None:
            await self.real.close()


def install_scripted(bot: Any) -> ScriptedBatcher:
    """Route the bot's classification (pipeline and commands) through a ScriptedBatcher."""
    scripted = ScriptedBatcher(tuple(bot.classifier.labels), dict(bot.classifier.thresholds), bot.batcher)
    bot.batcher = scripted
    bot.pipeline.batcher = scripted
    return scripted


def command_id(env: Any, name: str, *, kind: int = 1) -> int:
    """The synced id of a top-level application command (1 slash, 3 message menu)."""
    found = env.backend.find_command(name, None, type=kind)
    assert found is not None, f"command {name!r} is not synced"
    return int(found["id"])


def allow_command_for(env: Any, guild: Any, name: str, member: Any, *, kind: int = 1) -> None:
    """An admin's per-member override in Integrations settings: the member now SEES the command
    even without its default permission, so only the bot's own check protects it."""
    guild.set_command_permissions(command_id(env, name, kind=kind), {member: True})


async def forum_post(env: Any, guild: Any, forum: Any, author: Any, title: str, content: str) -> tuple[Any, Any]:
    """A member opens a forum post: the thread and its starter message share one id."""
    from simcord.builders import ChannelHandle

    backend = env.backend
    thread = backend.create_thread(forum.id, title, author.id, broadcast=False)
    backend.announce_thread_create(thread)
    starter = backend.prepare_message(thread.id, author.id, content)
    starter.id = thread.id
    backend.commit_message(starter)
    await env.settle()
    handle = ChannelHandle(env, guild, thread)
    return handle, handle.history()[0]
