"""Live classification: new messages, edits, deletes (message, bulk, channel, thread), leaving a guild.

Raw events are used for edits and deletes so messages outside discord.py's cache (older, or
from before a restart) are handled too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands
from sqlalchemy import delete, or_

from bot.db.models import GUILD_SCOPED, ChannelSettings, Feedback, MessageRecord, TagAction

if TYPE_CHECKING:
    from bot.app import ChatLabelBot

log = logging.getLogger(__name__)


def content_changed(payload: discord.RawMessageUpdateEvent, stored: tuple[bool, object] | None) -> bool:
    """Whether an edit changed what we classify (text, or attachment-only-ness).

    With the old message cached, compare directly. Without it, rely on `edited_timestamp`:
    embed unfurls and pins update a message without setting it, and an edit we already
    classified has the same timestamp stored.
    """
    if "content" not in payload.data and "attachments" not in payload.data:
        return False
    new = payload.message
    old = payload.cached_message
    if old is not None:
        return old.content != new.content or bool(old.attachments) != bool(new.attachments)
    if new.edited_at is None:
        return False
    if stored is None:
        return True
    exists, edited_at = stored
    return not exists or edited_at != new.edited_at


class LiveClassification(commands.Cog):
    def __init__(self, bot: ChatLabelBot) -> None:
        self.bot = bot

    def _guild_active(self, guild_id: int | None) -> bool:
        return guild_id is not None and self.bot.get_guild(guild_id) is not None

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None or not self._guild_active(message.guild.id):
            return
        await self.bot.pipeline.handle_live(message)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        if not self._guild_active(payload.guild_id):
            return
        stored = None
        if payload.cached_message is None and payload.message.edited_at is not None:
            stored = await self.bot.pipeline.stored_edited_at(payload.message_id)
        if not content_changed(payload, stored):
            return
        await self.bot.pipeline.handle_live(payload.message, is_edit=True)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if payload.guild_id is None:
            return
        await self.bot.writer.delete([payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        if payload.guild_id is None or not payload.message_ids:
            return
        await self.bot.writer.delete(payload.message_ids)

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        await purge_channel(self.bot, channel.guild.id, channel.id)
        log.info("channel %s deleted: purged its rows and its threads' rows", channel.id)

    @commands.Cog.listener()
    async def on_raw_thread_delete(self, payload: discord.RawThreadDeleteEvent) -> None:
        await purge_channel(self.bot, payload.guild_id, payload.thread_id)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await purge_guild(self.bot, guild.id)
        log.info("left guild %s: purged all of its rows", guild.id)


async def purge_guild(bot: ChatLabelBot, guild_id: int) -> None:
    """Delete every row about a guild, in every table, in one transaction."""
    await bot.writer.flush()  # rows queued before the removal must not land after the purge
    async with bot.sessionmaker.begin() as session:
        for model in GUILD_SCOPED:
            await session.execute(delete(model).where(model.guild_id == guild_id))
    bot.guild_configs.invalidate(guild_id)


async def purge_channel(bot: ChatLabelBot, guild_id: int, channel_id: int) -> None:
    """Delete the rows of a deleted channel or thread (and of threads under a deleted channel).

    Discord deleted the messages, so we delete what we stored about them.
    """
    await bot.writer.flush()  # queued rows for this channel must not land after the purge
    async with bot.sessionmaker.begin() as session:
        await session.execute(
            delete(MessageRecord).where(
                MessageRecord.guild_id == guild_id,
                or_(MessageRecord.channel_id == channel_id, MessageRecord.parent_id == channel_id),
            )
        )
        for model in (Feedback, TagAction, ChannelSettings):
            await session.execute(
                delete(model).where(model.guild_id == guild_id, model.channel_id == channel_id)
            )
    bot.guild_configs.invalidate(guild_id)


async def setup(bot: ChatLabelBot) -> None:
    await bot.add_cog(LiveClassification(bot))
