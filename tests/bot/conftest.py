"""Fixtures that run the REAL bot (from `create_bot`) offline against simcord's in-memory Discord.

    async def test_something(sim):
        msg = await sim.send(sim.alice, sim.general, "anyone know why pip hangs?")
        row = await sim.row(msg.id)          # the stored `messages` row (after the write)
        assert row.label in sim.bot.classifier.labels

See tests/bot/README.md for the full tour (threads, forums, slash commands, restarts).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord
import pytest
import pytest_asyncio
import simcord
from simcord.builders import ChannelHandle
from simcord.enums import ChannelType
from sqlalchemy import select

from bot.app import ChatLabelBot, create_bot
from bot.db.models import MessageRecord
from bot.settings import Settings

FORUM_TAGS = ("question", "answer", "comment", "bug_report", "suggestion", "spam", "toxic")


def make_settings(tmp_path: Path, model_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test bot: temp SQLite file, tiny model, fast writer, no .env, no metrics."""
    values: dict[str, Any] = {
        "discord_token": None,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "model_dir": model_dir,
        "db_flush_interval_ms": 10,
        "db_busy_timeout_ms": 200,
        "backfill_per_channel": 200,
        "metrics_port": 0,
        "owner_ids": [],
        "log_level": "INFO",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(autouse=True)
def discord_like_history_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make simcord's `GET /channels/{id}/messages?after=X&limit=N` behave like Discord's.

    Discord returns the N messages immediately AFTER X (newest first within the page), which
    is what discord.py's `history(after=...)` paging relies on; simcord 3.2.1 returns the
    newest N, which would make a capped backfill skip the oldest missed messages.
    """
    from simcord.http import router
    from simcord.http.routes import messages as message_routes

    original = message_routes.get_history

    def get_history(ctx: Any) -> Any:
        params = ctx.params
        if "after" not in params or "before" in params or "around" in params:
            return original(ctx)
        limit = int(params.get("limit", 50))
        ctx.params = {**params, "limit": 10**9}
        everything_after = original(ctx)  # newest first
        return everything_after[-limit:] if limit else []

    table = [
        (template, get_history if handler is original else handler)
        for template, handler in router._ROUTES["GET"]
    ]
    monkeypatch.setitem(router._ROUTES, "GET", table)


@pytest.fixture(scope="session")
def tiny_classifier(tiny_model_dir: Path):
    """The tiny ONNX model, loaded once per session and shared by every test bot."""
    from classifier import Classifier

    return Classifier.load(tiny_model_dir, threads=1, sessions=1)


@pytest.fixture
def bot_settings_overrides() -> dict[str, Any]:
    """Override in a test module (or with `@pytest.mark.parametrize(indirect=...)`) to tweak Settings."""
    return {}


@pytest.fixture
def bot_settings(tmp_path: Path, tiny_model_dir: Path, bot_settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, tiny_model_dir, **bot_settings_overrides)


@pytest.fixture
def bot_extensions() -> Sequence[str] | None:
    """Which extensions the test bot loads; None = every module in bot/exts (the real bot)."""
    return None


async def prepared_bot(
    settings: Settings, classifier: Any, extensions: Sequence[str] | None = None
) -> ChatLabelBot:
    """A bot whose services are already running.

    `prepare()` starts long-lived workers (micro-batcher, DB writer). Calling it here, outside
    simcord's bot-owned work tracking, keeps simcord from waiting on those idle workers when it
    settles; `setup_hook` then finds the bot prepared and only loads the extensions.
    """
    bot = create_bot(settings, classifier=classifier, extensions=extensions)
    await bot.prepare()
    return bot


@pytest_asyncio.fixture
async def simcord_bot(
    bot_settings: Settings, tiny_classifier: Any, bot_extensions: Sequence[str] | None
) -> AsyncIterator[ChatLabelBot]:
    """The bot simcord's `simcord_env` fixture runs (hook of the simcord pytest plugin)."""
    bot = await prepared_bot(bot_settings, tiny_classifier, bot_extensions)
    try:
        yield bot
    finally:
        await bot.shutdown_services()


@dataclass
class Classified:
    """One `message_classified` / `message_classified_backfill` event seen by the test."""

    message: Any
    prediction: Any
    is_edit: bool | None  # None for backfill events
    backfill: bool


@dataclass
class Sim:
    """A running bot in a simulated guild, with helpers. Attributes are simcord handles."""

    env: simcord.Env
    guild: simcord.GuildHandle
    general: ChannelHandle  # text channel
    random: ChannelHandle  # second text channel
    thread: ChannelHandle  # public thread in #general
    forum: ChannelHandle  # forum channel with one tag per label
    forum_post: ChannelHandle  # a user's post (thread) in the forum
    alice: simcord.MemberActor
    bob: simcord.MemberActor
    mod: simcord.MemberActor  # has manage_messages + manage_guild
    events: list[Classified] = field(default_factory=list)
    bots: list[ChatLabelBot] = field(default_factory=list)

    @property
    def bot(self) -> ChatLabelBot:
        return self.env.bot  # type: ignore[return-value]

    # ----------------------------------------------------------- acting
    async def send(
        self,
        author: simcord.MemberActor,
        channel: ChannelHandle,
        content: str = "",
        **kwargs: Any,
    ) -> discord.Message:
        """Post as a user (full gateway round trip); returns once the bot has settled.

        kwargs: `reply_to=<message>`, `attachments=[("a.png", b"...")]`.
        """
        return await author.send(channel, content, **kwargs)

    def seed_history(
        self,
        author: simcord.MemberActor | simcord.UserHandle,
        channel: ChannelHandle,
        content: str = "",
        *,
        attachments: Sequence[tuple[str, bytes]] = (),
        age: timedelta | None = None,
    ) -> int:
        """Store a message in Discord's history WITHOUT a gateway event (sent while the bot
        was down or disconnected). `age` back-dates it (its snowflake and timestamp) without
        moving the simulated clock. Returns its id."""
        backend = self.env.backend
        payloads = backend.store_attachments(channel.id, attachments) if attachments else None
        clock = backend.clock
        saved = clock._epoch  # simcord-internal; advance_time() would also run every timer
        if age is not None:
            clock._epoch = saved - age
        try:
            message = backend.create_message(
                channel.id, author.id, content, attachments=payloads, broadcast=False
            )
        finally:
            clock._epoch = saved
        return message.id

    async def restart(self, **settings_overrides: Any) -> ChatLabelBot:
        """Replace the bot with a fresh one on the same database (READY again → backfill)."""
        old = self.bot
        settings = old.settings.model_copy(update=settings_overrides)
        new = await prepared_bot(settings, old.classifier)
        _record_events(new, self.events)
        self.bots.append(new)
        await self.env.restart_bot(new)
        await old.shutdown_services()
        return new

    def create_thread(self, parent: ChannelHandle, name: str, owner: simcord.MemberActor) -> ChannelHandle:
        thread = self.env.backend.create_thread(parent.id, name, owner.id)
        return ChannelHandle(self.env, self.guild, thread)

    async def settle(self) -> None:
        await self.env.settle()

    async def dispatch(self, event: str, *args: Any) -> None:
        """`bot.dispatch(event, ...)` as bot-owned work (so settling waits for the listeners),
        e.g. `await sim.dispatch("disconnect")`. Gateway events with a payload are better sent
        through simcord: `sim.env.backend.emit("RESUMED", {})`, then `await sim.settle()`."""
        with self.env._bot_scope():  # simcord-internal: marks the listener tasks as the bot's
            self.bot.dispatch(event, *args)
        await self.env.settle()

    # ----------------------------------------------------------- asserting
    async def flush(self) -> None:
        await self.bot.writer.flush()

    async def row(self, message_id: int) -> MessageRecord | None:
        await self.flush()
        async with self.bot.sessionmaker() as session:
            return await session.get(MessageRecord, message_id)

    async def rows(self, **where: Any) -> list[MessageRecord]:
        """All `messages` rows (optionally filtered by column equality), oldest first."""
        await self.flush()
        statement = select(MessageRecord).order_by(MessageRecord.message_id)
        for column, value in where.items():
            statement = statement.where(getattr(MessageRecord, column) == value)
        async with self.bot.sessionmaker() as session:
            return list(await session.scalars(statement))

    def db_path(self) -> Path:
        url = self.bot.settings.database_url
        return Path(url.split(":///", 1)[1])


def _record_events(bot: ChatLabelBot, sink: list[Classified]) -> None:
    async def on_message_classified(message: Any, prediction: Any, is_edit: bool) -> None:
        sink.append(Classified(message, prediction, is_edit, backfill=False))

    async def on_message_classified_backfill(message: Any, prediction: Any) -> None:
        sink.append(Classified(message, prediction, None, backfill=True))

    bot.add_listener(on_message_classified)
    bot.add_listener(on_message_classified_backfill)


def build_world(env: simcord.Env) -> dict[str, Any]:
    guild = env.create_guild("Python Helpers")
    general = guild.create_text_channel("general")
    random = guild.create_text_channel("random")
    forum = guild.create_forum_channel("help-forum")
    env.backend.edit_channel(
        forum.id,
        {
            "available_tags": [
                {"id": str(env.backend.snowflake()), "name": name, "moderated": False,
                 "emoji_id": None, "emoji_name": None}
                for name in FORUM_TAGS
            ]
        },
    )
    mods = guild.create_role(
        "Mods", permissions=discord.Permissions(manage_messages=True, manage_guild=True)
    )
    alice = guild.add_member(env.create_user("alice"))
    bob = guild.add_member(env.create_user("bob"))
    mod = guild.add_member(env.create_user("mod"), roles=[mods])
    thread = ChannelHandle(env, guild, env.backend.create_thread(general.id, "pip-help", alice.id))
    post = env.backend.create_thread(forum.id, "pip hangs forever", bob.id, broadcast=False)
    env.backend.announce_thread_create(post)
    assert post.type == ChannelType.PUBLIC_THREAD
    return {
        "guild": guild,
        "general": general,
        "random": random,
        "thread": thread,
        "forum": forum,
        "forum_post": ChannelHandle(env, guild, post),
        "alice": alice,
        "bob": bob,
        "mod": mod,
    }


@pytest_asyncio.fixture
async def sim(simcord_env: simcord.Env) -> AsyncIterator[Sim]:
    """The real bot, connected to a simulated guild; slash commands synced globally."""
    bot: ChatLabelBot = simcord_env.bot  # type: ignore[assignment]
    events: list[Classified] = []
    _record_events(bot, events)
    world = build_world(simcord_env)
    await simcord_env.settle()
    await bot.tree.sync()
    state = Sim(env=simcord_env, events=events, bots=[bot], **world)
    try:
        yield state
    finally:
        for other in state.bots[1:]:
            await other.shutdown_services()
        await asyncio.sleep(0)
