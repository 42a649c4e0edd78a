"""Backfill: after start-up and after every reconnect, classify what was missed meanwhile.

For each readable text channel, active thread and forum post, and each thread archived since
the bot last saw the guild (posting unarchives a thread, so older archives hold nothing new;
at most BACKFILL_ARCHIVED_THREADS per channel, newest first): fetch history after the last
stored message id (or from the start of the guild's retention window when nothing is stored),
at most BACKFILL_PER_CHANNEL messages, oldest first; skip ids already stored; classify the
rest in bulk through the micro-batcher; write them idempotently. Channels are processed with
small concurrency (BACKFILL_CONCURRENCY), and discord.py's rate limiter paces the REST calls.

Messages stored live since the connection last dropped (or the session began) are excluded
from the watermark (`Pipeline.live_floor`), so a live message that lands before backfill
reaches its channel cannot hide the gap behind it; already-stored ids are skipped.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord.ext import commands
from sqlalchemy import func, select

from bot.db.models import MessageRecord
from bot.pipeline import facts_from_message, skip_reason

if TYPE_CHECKING:
    from bot.app import ChatLabelBot

log = logging.getLogger(__name__)

Backfillable = discord.TextChannel | discord.Thread


def readable_channels(guild: discord.Guild) -> list[Backfillable]:
    """Text channels, active threads and forum posts the bot can read the history of."""
    me = guild.me
    candidates: list[Backfillable] = [*guild.text_channels, *guild.threads]
    out = []
    for channel in candidates:
        if me is None or (isinstance(channel, discord.Thread) and channel.archived):
            continue  # archived threads: `recently_archived_threads` decides
        permissions = channel.permissions_for(me)
        if permissions.view_channel and permissions.read_message_history:
            out.append(channel)
    return out


class Backfill(commands.Cog):
    def __init__(self, bot: ChatLabelBot) -> None:
        self.bot = bot
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self.runs = 0  # completed passes (tests, logs)
        self.last_count = 0

    async def cog_unload(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # --------------------------------------------------------------- triggers
    @commands.Cog.listener()
    async def on_disconnect(self) -> None:
        # Rows stored live from now on (replayed or new) sit above the floor: the watermark
        # stays at what was stored before the connection dropped.
        self.bot.pipeline.reset_live_floor()

    @commands.Cog.listener()
    async def on_connect(self) -> None:
        self.bot.pipeline.reset_live_floor()  # a fresh session (IDENTIFY → READY)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        await self.trigger("ready")

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        await self.trigger("resumed")

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """A new server: classify its recent history (retention window, capped per channel)."""
        await self.trigger("guild_join")

    async def trigger(self, reason: str) -> None:
        """Run a pass now, or once more after the running one finishes."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.current_task()
        try:
            while True:
                self._again = False
                await self.run_pass(reason)
                if not self._again:
                    break
                reason = "again"
        finally:
            self._task = None

    # --------------------------------------------------------------- the pass
    async def run_pass(self, reason: str) -> int:
        total = 0
        limit = self.bot.settings.backfill_per_channel
        if limit <= 0:
            return 0
        semaphore = asyncio.Semaphore(self.bot.settings.backfill_concurrency)

        async def one(channel: Backfillable) -> int:
            async with semaphore:
                try:
                    return await self.backfill_channel(channel, limit)
                except discord.HTTPException as exc:
                    log.warning("backfill: skipping #%s (%s): %s", channel, channel.id, exc)
                    return 0

        for guild in list(self.bot.guilds):
            channels = readable_channels(guild)
            try:
                channels += await self.recently_archived_threads(guild, {c.id for c in channels})
            except discord.HTTPException as exc:
                log.warning("backfill: cannot list archived threads in %s: %s", guild.id, exc)
            counts = await asyncio.gather(*(one(channel) for channel in channels))
            total += sum(counts)
        self.runs += 1
        self.last_count = total
        log.info("backfill (%s): classified %d missed message(s)", reason, total)
        return total

    async def last_seen(self, guild_id: int) -> datetime | None:
        """When the newest stored message of the guild was written: the bot saw it up to here."""
        async with self.bot.sessionmaker() as session:
            newest = await session.scalar(
                select(func.max(MessageRecord.message_id)).where(MessageRecord.guild_id == guild_id)
            )
        return None if newest is None else discord.utils.snowflake_time(newest)

    async def recently_archived_threads(
        self, guild: discord.Guild, known: set[int]
    ) -> list[discord.Thread]:
        """Threads archived after the bot last saw the guild (within the retention window)."""
        cap = self.bot.settings.backfill_archived_threads
        me = guild.me
        if cap <= 0 or me is None:
            return []
        config = await self.bot.guild_configs.get(guild.id)
        since = discord.utils.utcnow() - timedelta(days=config.retention_days)
        seen = await self.last_seen(guild.id)
        if seen is not None and seen > since:
            since = seen
        found: list[discord.Thread] = []
        for parent in [*guild.text_channels, *guild.forums]:
            permissions = parent.permissions_for(me)
            if not (permissions.view_channel and permissions.read_message_history):
                continue
            listings = [parent.archived_threads(limit=cap)]
            if permissions.manage_threads and isinstance(parent, discord.TextChannel):
                # private archived threads need Manage Threads (forums have none)
                listings.append(parent.archived_threads(limit=cap, private=True))
            for listing in listings:
                async for thread in listing:
                    stamp = thread.archive_timestamp
                    if stamp is not None and stamp < since:
                        continue  # archived before the bot last saw the guild
                    if thread.id not in known:
                        known.add(thread.id)
                        found.append(thread)
        return found

    async def watermark(self, channel_id: int) -> int | None:
        """Highest stored message id in the channel, ignoring rows stored live this session."""
        floor = self.bot.pipeline.live_floor(channel_id)
        statement = select(func.max(MessageRecord.message_id)).where(
            MessageRecord.channel_id == channel_id
        )
        if floor is not None:
            statement = statement.where(MessageRecord.message_id < floor)
        async with self.bot.sessionmaker() as session:
            return await session.scalar(statement)

    async def existing_ids(self, ids: list[int]) -> set[int]:
        if not ids:
            return set()
        async with self.bot.sessionmaker() as session:
            rows = await session.scalars(
                select(MessageRecord.message_id).where(MessageRecord.message_id.in_(ids))
            )
            return set(rows)

    async def backfill_channel(self, channel: Backfillable, limit: int) -> int:
        guild = channel.guild
        config = await self.bot.guild_configs.get(guild.id)
        parent_id = getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None
        if config.is_ignored(channel.id, parent_id):
            return 0
        after_id = await self.watermark(channel.id)
        if after_id is None:
            start = discord.utils.utcnow() - timedelta(days=config.retention_days)
            after_id = discord.utils.time_snowflake(start, high=False)
        messages: list[discord.Message] = []
        async for message in channel.history(
            limit=limit, after=discord.Object(id=after_id), oldest_first=True
        ):
            if skip_reason(message) is None:
                messages.append(message)
        if not messages:
            return 0
        written = 0
        for start in range(0, len(messages), 100):
            page = messages[start : start + 100]
            known = await self.existing_ids([message.id for message in page])
            items = []
            for message in page:
                if message.id in known:
                    continue
                facts = facts_from_message(message)
                if facts is not None:
                    items.append((facts, message))
            if items:
                written += await self.bot.pipeline.process_bulk(items, source="backfill")
        if written:
            self.bot.metrics.backfill_messages.inc(written)
            log.info("backfill: #%s (%s): %d message(s)", channel, channel.id, written)
        return written


async def setup(bot: ChatLabelBot) -> None:
    await bot.add_cog(Backfill(bot))
