"""Retention job: every hour, delete rows older than each guild's `retention_days`.

Applies to messages, tag actions and feedback. Guilds without a settings row use
DEFAULT_RETENTION_DAYS. Uses `discord.utils.utcnow()` so simulated clocks apply in tests.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord.ext import commands, tasks
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Feedback, GuildSettings, MessageRecord, TagAction

if TYPE_CHECKING:
    from bot.app import ChatLabelBot

log = logging.getLogger(__name__)

EXPIRING = (MessageRecord, TagAction, Feedback)


async def purge_expired(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    default_days: int,
    overrides: Mapping[int, int] | None = None,
) -> int:
    """Delete expired rows; guilds in `overrides` (guild -> days) use their own window.

    Returns the number of rows deleted. When `overrides` is None they are read from
    `guild_settings`.
    """
    async with sessionmaker.begin() as session:
        if overrides is None:
            rows = await session.execute(select(GuildSettings.guild_id, GuildSettings.retention_days))
            overrides = {guild_id: days for guild_id, days in rows}
        deleted = 0
        for model in EXPIRING:
            default_cutoff = now - timedelta(days=default_days)
            conditions = [
                and_(model.guild_id == guild_id, model.created_at < now - timedelta(days=days))
                for guild_id, days in overrides.items()
            ]
            conditions.append(
                and_(model.guild_id.not_in(list(overrides)), model.created_at < default_cutoff)
            )
            result = await session.execute(delete(model).where(or_(*conditions)))
            deleted += result.rowcount or 0
    return deleted


class Retention(commands.Cog):
    def __init__(self, bot: ChatLabelBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.hourly.start()

    async def cog_unload(self) -> None:
        self.hourly.cancel()

    async def run_once(self) -> int:
        await self.bot.writer.flush()
        deleted = await purge_expired(
            self.bot.sessionmaker,
            now=discord.utils.utcnow(),
            default_days=self.bot.settings.default_retention_days,
        )
        if deleted:
            log.info("retention: deleted %d expired row(s)", deleted)
        return deleted

    @tasks.loop(hours=1)
    async def hourly(self) -> None:
        try:
            await self.run_once()
        except Exception:
            log.exception("retention pass failed; will retry next hour")


async def setup(bot: ChatLabelBot) -> None:
    await bot.add_cog(Retention(bot))
