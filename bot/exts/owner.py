"""Owner-only `!sync`: push the slash-command tree to Discord on demand, never on every start.

`!sync` syncs to GUILD_IDS_FOR_SYNC (or globally when that is empty), `!sync here` to the
current guild (instant, good for testing), `!sync global` globally (can take up to an hour
to show up). `python -m bot sync` does the same from the command line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

if TYPE_CHECKING:
    from bot.app import ChatLabelBot

log = logging.getLogger(__name__)


async def sync_commands(bot: commands.Bot, guild_ids: Sequence[int] = ()) -> list[str]:
    """Sync the tree globally (no guild ids) or copy it to each guild; returns one line each."""
    lines = []
    if not guild_ids:
        synced = await bot.tree.sync()
        lines.append(f"synced {len(synced)} command(s) globally")
    for guild_id in guild_ids:
        guild = discord.Object(id=guild_id)
        bot.tree.copy_global_to(guild=guild)
        synced = await bot.tree.sync(guild=guild)
        lines.append(f"synced {len(synced)} command(s) to guild {guild_id}")
    for line in lines:
        log.info(line)
    return lines


class Owner(commands.Cog):
    def __init__(self, bot: ChatLabelBot) -> None:
        self.bot = bot

    @commands.command(name="sync", hidden=True)
    @commands.is_owner()
    async def sync(self, ctx: commands.Context, scope: str | None = None) -> None:
        if scope == "here" and ctx.guild is not None:
            guild_ids: Sequence[int] = [ctx.guild.id]
        elif scope == "global":
            guild_ids = []
        elif scope is None:
            guild_ids = self.bot.settings.guild_ids_for_sync
        else:
            await ctx.reply("usage: `!sync`, `!sync here` or `!sync global`")
            return
        lines = await sync_commands(self.bot, guild_ids)
        await ctx.reply("\n".join(lines))

    @sync.error
    async def sync_error(self, ctx: commands.Context, error: commands.CommandError) -> None:
        if isinstance(error, commands.NotOwner):
            return  # stay silent: non-owners should not learn the command exists
        log.error("!sync failed: %s", error)
        await ctx.reply(f"sync failed: {error}")


async def setup(bot: ChatLabelBot) -> None:
    await bot.add_cog(Owner(bot))
