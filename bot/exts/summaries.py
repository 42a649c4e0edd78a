"""Weekly summaries: scheduled per guild, posted exactly once per guild and week.

Schedule: one APScheduler cron job per guild at its weekday/hour in its time zone, plus an
hourly sweep and a sweep right after start-up. Every run asks the same question: "is the
most recent due summary for this guild posted?" — so a summary missed while the bot was
down is posted when it comes back, and a changed schedule takes effect at once.
(A guild that never posted a summary only catches up on a due time after its last settings
change, so configuring a channel on Wednesday does not post last week's summary at once.)

Exactly once, across restarts: before posting, the bot CLAIMS the week by inserting the
`summaries_posted` row (insert-if-absent, `message_id` NULL). Only the run whose insert
succeeded posts; it then stores the message id. If posting fails, the claim is deleted so a
later sweep retries. If the process dies between claim and post, the row is left with a NULL
`message_id`; on the next sweep a claim that this process does not own is resolved by looking
for our summary message (its footer carries `summary <guild>:<week>`) in the channel's recent
history: found → the id is filled in, not found → it is posted. Double posting would need the
crash to land after Discord accepted the message and before the history became readable.

`/summary preview` shows the week so far (or the last full week) privately; `/summary post`
(Manage Server) posts the last full week to the summary channel now.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import discord
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from discord import app_commands
from discord.ext import commands
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.sqlite import insert

import bot.summary as summary_module
from bot.charts import week_comparison_chart
from bot.db.models import SummaryPosted
from bot.permissions import ensure_admin, ensure_guild
from bot.summary import (
    UNCERTAIN,
    WeeklySummary,
    build_summary,
    current_week_start,
    last_due,
    next_due,
    render_summary_text,
    week_covered_by,
)

if TYPE_CHECKING:
    from bot.app import ChatLabelBot
    from bot.guild_config import GuildConfig

log = logging.getLogger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HISTORY_SCAN = 50
EMBED_LIMIT = 4096


def summary_marker(guild_id: int, week_start: date) -> str:
    return f"summary {guild_id}:{week_start.isoformat()}"


class Summaries(commands.Cog):
    summary = app_commands.Group(
        name="summary",
        description="Weekly summaries of this server's messages.",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: ChatLabelBot, *, clock: Callable[[], datetime] | None = None) -> None:
        self.bot = bot
        # Looked up on each call so tests can move time (bot.summary.current_time).
        self.clock: Callable[[], datetime] = clock or (lambda: summary_module.current_time())
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._claims: set[tuple[int, date]] = set()  # claims this process is working on
        self._locks: dict[int, asyncio.Lock] = {}
        self._startup: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def cog_load(self) -> None:
        self.scheduler.start()
        self.scheduler.add_job(
            self.sweep, CronTrigger(minute=7), id="summary-sweep", replace_existing=True, coalesce=True
        )
        self._startup = asyncio.create_task(self._after_ready(), name="summaries-startup")

    async def cog_unload(self) -> None:
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def _after_ready(self) -> None:
        await self.bot.wait_until_ready()
        for guild_id in await self.bot.guild_configs.configured_guild_ids():
            config = await self.bot.guild_configs.get(guild_id)
            self.reschedule(config)
        await self.sweep()

    def reschedule(self, config: GuildConfig) -> None:
        """(Re)create this guild's cron job from its settings; none without a summary channel."""
        job_id = f"summary:{config.guild_id}"
        if config.summary_channel_id is None:
            if self.scheduler.get_job(job_id) is not None:
                self.scheduler.remove_job(job_id)
            return
        trigger = CronTrigger(
            day_of_week=WEEKDAYS[config.summary_weekday],
            hour=config.summary_hour,
            minute=0,
            timezone=ZoneInfo(config.timezone),
        )
        self.scheduler.add_job(
            self.post_due,
            trigger,
            args=[config.guild_id],
            id=job_id,
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=3600,
        )

    def next_run(self, guild_id: int) -> datetime | None:
        job = self.scheduler.get_job(f"summary:{guild_id}")
        return job.next_run_time if job is not None else None

    # ------------------------------------------------------------------ posting

    async def sweep(self) -> int:
        """Post every guild's most recent due summary that is not posted yet; returns posts."""
        posted = 0
        for guild_id in await self.bot.guild_configs.configured_guild_ids():
            if self.bot.get_guild(guild_id) is None:
                continue
            try:
                posted += await self.post_due(guild_id)
            except Exception:
                log.exception("weekly summary for guild %s failed", guild_id)
        return posted

    async def post_due(self, guild_id: int) -> bool:
        """Post the summary for the most recently due week of `guild_id` unless already done."""
        config = await self.bot.guild_configs.get(guild_id)
        if config.summary_channel_id is None:
            return False
        now = self.clock()
        due = last_due(now, config.summary_weekday, config.summary_hour, config.tz)
        week_start = week_covered_by(due)
        if not await self._may_catch_up(guild_id, due, config):
            return False
        return await self.post_week(guild_id, week_start, config) is not None

    async def _may_catch_up(self, guild_id: int, due: datetime, config: GuildConfig) -> bool:
        if config.updated_at is None or due >= config.updated_at:
            return True
        async with self.bot.sessionmaker() as session:
            earlier = await session.scalar(
                select(SummaryPosted.week_start).where(SummaryPosted.guild_id == guild_id).limit(1)
            )
        return earlier is not None

    def _lock(self, guild_id: int) -> asyncio.Lock:
        return self._locks.setdefault(guild_id, asyncio.Lock())

    async def post_week(
        self, guild_id: int, week_start: date, config: GuildConfig, *, force: bool = False
    ) -> discord.Message | None:
        """Claim, build, post and record the summary of one week; None when nothing was posted.

        `force` (manual `/summary post`) posts even when the week was already posted, without
        touching the existing record.
        """
        channel = self._summary_channel(config)
        if channel is None:
            return None
        async with self._lock(guild_id):
            if force:
                claimed = await self._claim(guild_id, week_start, channel.id)
                try:
                    message = await self._send(channel, guild_id, week_start, config)
                except BaseException:
                    if claimed:
                        await self._release(guild_id, week_start)
                    raise
                if claimed:
                    await self._complete(guild_id, week_start, message)
                return message
            if not await self._claim(guild_id, week_start, channel.id):
                if not await self._resolve_orphan_claim(guild_id, week_start, channel):
                    return None
            try:
                message = await self._send(channel, guild_id, week_start, config)
            except BaseException:
                await self._release(guild_id, week_start)
                raise
            await self._complete(guild_id, week_start, message)
            log.info("posted weekly summary for guild %s, week %s", guild_id, week_start)
            return message

    def _summary_channel(self, config: GuildConfig) -> discord.TextChannel | discord.Thread | None:
        guild = self.bot.get_guild(config.guild_id)
        channel = guild.get_channel_or_thread(config.summary_channel_id) if guild else None  # type: ignore[arg-type]
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            log.warning("summary channel %s of guild %s is gone", config.summary_channel_id, config.guild_id)
            return None
        permissions = channel.permissions_for(channel.guild.me)
        if not (permissions.send_messages and permissions.embed_links and permissions.attach_files):
            log.warning("cannot post the summary in channel %s (missing permissions)", channel.id)
            return None
        return channel

    async def _claim(self, guild_id: int, week_start: date, channel_id: int) -> bool:
        statement = (
            insert(SummaryPosted)
            .values(guild_id=guild_id, week_start=week_start, posted_at=self.clock(), channel_id=channel_id)
            .on_conflict_do_nothing(index_elements=[SummaryPosted.guild_id, SummaryPosted.week_start])
        )
        async with self.bot.sessionmaker.begin() as session:
            result = await session.execute(statement)
        claimed = bool(result.rowcount)
        if claimed:
            self._claims.add((guild_id, week_start))
        return claimed

    async def _release(self, guild_id: int, week_start: date) -> None:
        async with self.bot.sessionmaker.begin() as session:
            await session.execute(
                delete(SummaryPosted).where(
                    SummaryPosted.guild_id == guild_id, SummaryPosted.week_start == week_start
                )
            )
        self._claims.discard((guild_id, week_start))

    async def _complete(self, guild_id: int, week_start: date, message: discord.Message) -> None:
        async with self.bot.sessionmaker.begin() as session:
            await session.execute(
                update(SummaryPosted)
                .where(SummaryPosted.guild_id == guild_id, SummaryPosted.week_start == week_start)
                .values(message_id=message.id, channel_id=message.channel.id, posted_at=self.clock())
            )
        self._claims.discard((guild_id, week_start))

    async def _resolve_orphan_claim(
        self, guild_id: int, week_start: date, channel: discord.TextChannel | discord.Thread
    ) -> bool:
        """True when the week is claimed but never posted (crash) and should be posted now."""
        if (guild_id, week_start) in self._claims:
            return False  # in flight in this process
        async with self.bot.sessionmaker() as session:
            row = await session.get(SummaryPosted, (guild_id, week_start))
        if row is None or row.message_id is not None:
            return False
        marker = summary_marker(guild_id, week_start)
        async for message in channel.history(limit=HISTORY_SCAN):
            if message.author.id == self.bot.user.id and any(  # type: ignore[union-attr]
                embed.footer.text and marker in embed.footer.text for embed in message.embeds
            ):
                await self._complete(guild_id, week_start, message)
                return False
        log.warning("summary claim for guild %s week %s was never posted; posting now", guild_id, week_start)
        self._claims.add((guild_id, week_start))
        return True

    async def build(self, guild_id: int, week_start: date, config: GuildConfig) -> tuple[WeeklySummary, str, bytes]:
        async with self.bot.sessionmaker() as session:
            summary = await build_summary(
                session,
                guild_id,
                week_start,
                config.tz,
                unanswered_after=timedelta(hours=config.unanswered_after_hours),
                now=self.clock(),
            )
        labels = tuple(self.bot.classifier.labels)
        text = render_summary_text(summary, labels)
        chart = await asyncio.to_thread(
            week_comparison_chart,
            summary.label_counts,
            summary.previous_label_counts,
            [*labels, UNCERTAIN],
            title=f"Label mix, week of {week_start:%d %b %Y}",
        )
        return summary, text, chart

    def _embed(self, text: str, guild_id: int, week_start: date) -> discord.Embed:
        if len(text) > EMBED_LIMIT:
            text = text[: EMBED_LIMIT - 1] + "…"
        embed = discord.Embed(description=text, colour=discord.Colour.blurple())
        embed.set_image(url="attachment://summary.png")
        embed.set_footer(text=f"chatlabel {summary_marker(guild_id, week_start)}")
        return embed

    async def _send(
        self, channel: discord.TextChannel | discord.Thread, guild_id: int, week_start: date, config: GuildConfig
    ) -> discord.Message:
        _summary, text, chart = await self.build(guild_id, week_start, config)
        return await channel.send(
            embed=self._embed(text, guild_id, week_start),
            file=discord.File(io.BytesIO(chart), filename="summary.png"),
            allowed_mentions=discord.AllowedMentions.none(),
        )

    # ------------------------------------------------------------------ commands

    @summary.command(name="preview", description="Preview the weekly summary (only you see it).")
    @app_commands.describe(week="This week so far (default) or the last full week")
    @app_commands.choices(
        week=[
            app_commands.Choice(name="this week so far", value="this"),
            app_commands.Choice(name="last full week", value="last"),
        ]
    )
    async def preview(self, interaction: discord.Interaction, week: app_commands.Choice[str] | None = None) -> None:
        if not await ensure_guild(interaction):
            return
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        config = await self.bot.guild_configs.get(interaction.guild_id)
        now = self.clock()
        week_start = current_week_start(now, config.summary_weekday, config.summary_hour, config.tz)
        if week is not None and week.value == "last":
            week_start -= timedelta(days=7)
        _summary, text, chart = await self.build(interaction.guild_id, week_start, config)
        when = next_due(now, config.summary_weekday, config.summary_hour, config.tz)
        where = f"<#{config.summary_channel_id}>" if config.summary_channel_id else "nowhere yet (`/config summary`)"
        await interaction.followup.send(
            f"Preview. Next scheduled summary: {discord.utils.format_dt(when, 'F')} in {where}.",
            embed=self._embed(text, interaction.guild_id, week_start),
            file=discord.File(io.BytesIO(chart), filename="summary.png"),
            ephemeral=True,
        )

    @summary.command(name="post", description="Post the last full week's summary to the summary channel now.")
    async def post(self, interaction: discord.Interaction) -> None:
        if not await ensure_admin(interaction):
            return
        assert interaction.guild_id is not None
        config = await self.bot.guild_configs.get(interaction.guild_id)
        if config.summary_channel_id is None:
            await interaction.response.send_message(
                "No summary channel is set. Use `/config summary channel:` first.", ephemeral=True
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        now = self.clock()
        week_start = week_covered_by(last_due(now, config.summary_weekday, config.summary_hour, config.tz))
        message = await self.post_week(interaction.guild_id, week_start, config, force=True)
        if message is None:
            await interaction.followup.send(
                f"Couldn't post in <#{config.summary_channel_id}>: check that it exists and that I can "
                "send messages, embed links and attach files there.",
                ephemeral=True,
            )
            return
        await interaction.followup.send(f"Posted: {message.jump_url}", ephemeral=True)


async def setup(bot: ChatLabelBot) -> None:
    await bot.add_cog(Summaries(bot))
