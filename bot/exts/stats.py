"""`/stats [channel] [days]`: message counts and label mix, with a bar chart.

Counts only (no text, no authors). A channel's stats include its threads / forum posts.
Asking about a channel requires being able to see it; the server-wide numbers are
aggregates. The chart is rendered in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.charts import label_mix_chart
from bot.db.models import MessageRecord
from bot.feedback import live_precision
from bot.permissions import ensure_guild, reply_ephemeral
from bot.summary import UNCERTAIN

if TYPE_CHECKING:
    from bot.app import ChatLabelBot


@dataclass(frozen=True)
class LabelStats:
    total: int
    attachment_only: int
    label_counts: dict[str, int]  # confident predictions per label, plus "uncertain"

    @property
    def classified(self) -> int:
        return sum(self.label_counts.values())

    @property
    def uncertain_share(self) -> float:
        return self.label_counts.get(UNCERTAIN, 0) / self.classified if self.classified else 0.0


async def label_stats(
    session: AsyncSession, guild_id: int, since: datetime, channel_id: int | None = None
) -> LabelStats:
    """Counts since `since` for the guild, or one channel including its threads."""
    statement = (
        select(MessageRecord.attachment_only, MessageRecord.uncertain, MessageRecord.label, func.count())
        .where(MessageRecord.guild_id == guild_id, MessageRecord.created_at >= since)
        .group_by(MessageRecord.attachment_only, MessageRecord.uncertain, MessageRecord.label)
    )
    if channel_id is not None:
        statement = statement.where(
            or_(MessageRecord.channel_id == channel_id, MessageRecord.parent_id == channel_id)
        )
    total = attachment_only = 0
    counts: Counter[str] = Counter()
    for is_attachment, uncertain, label, n in await session.execute(statement):
        total += n
        if is_attachment or label is None:
            attachment_only += n
        else:
            counts[UNCERTAIN if uncertain else label] += n
    return LabelStats(total, attachment_only, dict(counts))


def stats_embed(
    stats: LabelStats, labels: tuple[str, ...], *, scope: str, days: int, precision: dict
) -> discord.Embed:
    embed = discord.Embed(title=f"Stats for {scope} — last {days} day{'s' if days != 1 else ''}")
    embed.add_field(name="Messages", value=str(stats.total))
    embed.add_field(name="Classified", value=str(stats.classified))
    embed.add_field(name="Uncertain", value=f"{stats.uncertain_share:.0%}")
    if stats.attachment_only:
        embed.add_field(name="Attachment-only", value=str(stats.attachment_only))
    ordered = [*labels, *sorted(set(stats.label_counts) - set(labels) - {UNCERTAIN}), UNCERTAIN]
    lines = []
    for label in ordered:
        n = stats.label_counts.get(label, 0)
        if not n:
            continue
        share = n / stats.classified
        line = f"`{label}` {n} ({share:.0%})"
        judged = precision.get(label)
        if judged is not None and judged.judged:
            line += f" · precision {judged.precision:.0%} of {judged.judged} judged"
        lines.append(line)
    embed.add_field(name="Label mix", value="\n".join(lines) or "no classified messages", inline=False)
    embed.set_image(url="attachment://stats.png")
    return embed


class Stats(commands.Cog):
    def __init__(self, bot: ChatLabelBot) -> None:
        self.bot = bot

    @app_commands.command(name="stats", description="Message counts and label mix (only you see them).")
    @app_commands.guild_only()
    @app_commands.describe(channel="Only this channel (and its threads)", days="How many days back (default 7)")
    async def stats(
        self,
        interaction: discord.Interaction,
        channel: discord.TextChannel | discord.ForumChannel | discord.Thread | None = None,
        days: app_commands.Range[int, 1, 365] = 7,
    ) -> None:
        if not await ensure_guild(interaction):
            return
        assert interaction.guild is not None
        if channel is not None and isinstance(interaction.user, discord.Member):
            resolved = interaction.guild.get_channel_or_thread(channel.id) or channel
            if not resolved.permissions_for(interaction.user).view_channel:  # type: ignore[union-attr]
                await reply_ephemeral(interaction, "You can't see that channel.")
                return
        await interaction.response.defer(ephemeral=True, thinking=True)
        since = discord.utils.utcnow() - timedelta(days=days)
        async with self.bot.sessionmaker() as session:
            stats = await label_stats(session, interaction.guild.id, since, channel.id if channel else None)
            precision = await live_precision(session, interaction.guild.id)
        labels = tuple(self.bot.classifier.labels)
        scope = f"#{channel.name}" if channel is not None else interaction.guild.name
        chart = await asyncio.to_thread(
            label_mix_chart, stats.label_counts, [*labels, UNCERTAIN], title=f"Label mix — {scope}, {days} d"
        )
        await interaction.followup.send(
            embed=stats_embed(stats, labels, scope=scope, days=days, precision=precision),
            file=discord.File(io.BytesIO(chart), filename="stats.png"),
            ephemeral=True,
        )


async def setup(bot: ChatLabelBot) -> None:
    await bot.add_cog(Stats(bot))
