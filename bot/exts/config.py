"""`/config ...`: every per-server setting (Manage Server only, checked again in each callback).

All writes go through `bot.guild_configs` (database first, then the cache entry is
replaced). Label names are checked against the running model's labels.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import discord
from discord import app_commands
from discord.ext import commands

from bot.db.models import TAGGING_MODES
from bot.exts.tagging import DEFAULT_EMOJI, NO_EMOJI, effective_threshold, emoji_for
from bot.feedback import (
    DEFAULT_MIN_SAMPLES,
    DEFAULT_TARGET_PRECISION,
    feedback_samples,
    suggest_thresholds,
)
from bot.permissions import ensure_admin, reply_ephemeral
from bot.summary import next_due

if TYPE_CHECKING:
    from bot.app import ChatLabelBot
    from bot.guild_config import GuildConfig

log = logging.getLogger(__name__)

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TZ_EXAMPLES = "Europe/Berlin, America/New_York, Asia/Kolkata or UTC"
MAX_EMOJI_LENGTH = 64


def validate_timezone(name: str) -> str:
    """The IANA name, or ValueError with a message a user can act on."""
    cleaned = name.strip()
    try:
        ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"`{name}` is not a time zone I know. Use an IANA name such as {TZ_EXAMPLES}.") from None
    return cleaned


def parse_labels(text: str, known: Sequence[str]) -> list[str]:
    """'spam, toxic' -> ['spam', 'toxic']; unknown names raise ValueError listing the valid ones."""
    labels = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ValueError(f"Unknown label(s): {', '.join(unknown)}. Labels: {', '.join(known)}.")
    return list(dict.fromkeys(labels))


def render_config(config: GuildConfig, labels: Sequence[str], model_thresholds: dict[str, float]) -> str:
    def channel(channel_id: int | None) -> str:
        return f"<#{channel_id}>" if channel_id else "not set"

    lines = ["**Weekly summary**"]
    lines.append(f"- channel: {channel(config.summary_channel_id)}")
    lines.append(
        f"- when: {WEEKDAY_NAMES[config.summary_weekday]} {config.summary_hour:02d}:00 ({config.timezone})"
    )
    lines.append(f"- questions count as unanswered after {config.unanswered_after_hours} h")
    lines.append("**Alerts**")
    lines.append(f"- channel: {channel(config.alert_channel_id)}")
    lines.append(f"- labels: {', '.join(config.alert_labels) or 'none'}")
    lines.append("**Channels**")
    tagged = [(cid, c) for cid, c in sorted(config.channels.items()) if c.tagging_mode != "off"]
    ignored = [cid for cid, c in sorted(config.channels.items()) if c.ignored]
    lines.append(
        "- tagging: " + (", ".join(f"<#{cid}> {c.tagging_mode}" for cid, c in tagged) or "off everywhere")
    )
    lines.append("- ignored: " + (", ".join(f"<#{cid}>" for cid in ignored) or "none"))
    lines.append("**Labels** (threshold · emoji)")
    for label in labels:
        threshold = effective_threshold(label, config.thresholds, model_thresholds)
        source = "server" if label in config.thresholds else "model"
        emoji = emoji_for(label, config.emoji_map) or "no reaction"
        lines.append(f"- `{label}`: {threshold:.2f} ({source}) · {emoji}")
    lines.append(f"**Retention**: {config.retention_days} days")
    return "\n".join(lines)


def _channel_warning(channel: discord.abc.GuildChannel, *needed: str) -> str:
    permissions = channel.permissions_for(channel.guild.me)
    missing = [name.replace("_", " ") for name in needed if not getattr(permissions, name)]
    if not missing:
        return ""
    return f"\n⚠️ I am missing **{', '.join(missing)}** in {channel.mention}; grant it or nothing will appear."


class Config(commands.Cog):
    config = app_commands.Group(
        name="config",
        description="Server settings for the classifier bot.",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )
    thresholds = app_commands.Group(
        name="thresholds", description="Per-label confidence thresholds.", parent=config
    )

    def __init__(self, bot: ChatLabelBot) -> None:
        self.bot = bot
        self._timezones: list[str] = []

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.bot.classifier.labels)

    async def _update(self, interaction: discord.Interaction, **fields: object) -> GuildConfig | None:
        assert interaction.guild_id is not None
        try:
            return await self.bot.guild_configs.update(interaction.guild_id, **fields)
        except ValueError as exc:
            await reply_ephemeral(interaction, f"Not saved: {exc}")
            return None

    def _reschedule_summaries(self, config: GuildConfig) -> None:
        summaries = self.bot.get_cog("Summaries")
        if summaries is not None:
            summaries.reschedule(config)  # type: ignore[attr-defined]

    # --------------------------------------------------------------- autocomplete

    async def label_autocomplete(self, _interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        needle = current.lower()
        return [app_commands.Choice(name=label, value=label) for label in self.labels if needle in label.lower()][:25]

    async def timezone_autocomplete(self, _interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        if not self._timezones:  # first use: read the tz database off the event loop
            self._timezones = sorted(await asyncio.to_thread(available_timezones))
        needle = current.lower().replace(" ", "_")
        return [app_commands.Choice(name=tz, value=tz) for tz in self._timezones if needle in tz.lower()][:25]

    # --------------------------------------------------------------- commands

    @config.command(name="show", description="Show every setting for this server.")
    async def show(self, interaction: discord.Interaction) -> None:
        if not await ensure_admin(interaction):
            return
        assert interaction.guild_id is not None
        config = await self.bot.guild_configs.get(interaction.guild_id)
        text = render_config(config, self.labels, dict(self.bot.classifier.thresholds))
        await interaction.response.send_message(text[:2000], ephemeral=True)

    @config.command(name="summary", description="Where and when the weekly summary is posted.")
    @app_commands.describe(
        channel="Channel for the weekly summary",
        weekday="Day to post on",
        hour="Hour to post at (0-23, in the time zone)",
        timezone="IANA time zone, e.g. Europe/Berlin",
        unanswered_hours="A question with no reply after this many hours counts as unanswered",
        disable="Stop posting weekly summaries",
    )
    @app_commands.choices(weekday=[app_commands.Choice(name=name, value=i) for i, name in enumerate(WEEKDAY_NAMES)])
    @app_commands.autocomplete(timezone=timezone_autocomplete)
    async def summary(
        self,
        interaction: discord.Interaction,
        channel: discord.TextChannel | None = None,
        weekday: app_commands.Choice[int] | None = None,
        hour: app_commands.Range[int, 0, 23] | None = None,
        timezone: str | None = None,
        unanswered_hours: app_commands.Range[int, 1, 720] | None = None,
        disable: bool = False,
    ) -> None:
        if not await ensure_admin(interaction):
            return
        fields: dict[str, object] = {}
        if timezone is not None:
            try:
                fields["timezone"] = validate_timezone(timezone)
            except ValueError as exc:
                await reply_ephemeral(interaction, str(exc))
                return
        if disable:
            fields["summary_channel_id"] = None
        elif channel is not None:
            fields["summary_channel_id"] = channel.id
        if weekday is not None:
            fields["summary_weekday"] = weekday.value
        if hour is not None:
            fields["summary_hour"] = hour
        if unanswered_hours is not None:
            fields["unanswered_after_hours"] = unanswered_hours
        if not fields:
            await reply_ephemeral(interaction, "Nothing to change: pass at least one option.")
            return
        config = await self._update(interaction, **fields)
        if config is None:
            return
        self._reschedule_summaries(config)
        if config.summary_channel_id is None:
            text = "Weekly summaries are off."
        else:
            when = next_due(discord.utils.utcnow(), config.summary_weekday, config.summary_hour, config.tz)
            text = (
                f"Weekly summary: <#{config.summary_channel_id}>, every {WEEKDAY_NAMES[config.summary_weekday]} "
                f"at {config.summary_hour:02d}:00 {config.timezone}. Next: {discord.utils.format_dt(when, 'F')}."
            )
            if channel is not None:
                text += _channel_warning(channel, "send_messages", "embed_links", "attach_files")
        await reply_ephemeral(interaction, text)

    @config.command(name="tagging", description="Tagging mode for a channel (threads and forum posts follow it).")
    @app_commands.describe(channel="The channel or forum", mode="off, shadow (record only), react or forum (tags)")
    @app_commands.choices(mode=[app_commands.Choice(name=m, value=m) for m in TAGGING_MODES])
    async def tagging(
        self,
        interaction: discord.Interaction,
        channel: discord.TextChannel | discord.ForumChannel,
        mode: app_commands.Choice[str],
    ) -> None:
        if not await ensure_admin(interaction):
            return
        assert interaction.guild_id is not None
        await self.bot.guild_configs.set_channel(interaction.guild_id, channel.id, tagging_mode=mode.value)
        text = f"Tagging in {channel.mention}: **{mode.value}**."
        if mode.value == "forum" and not isinstance(channel, discord.ForumChannel):
            text += "\nℹ️ forum mode only tags posts in forum channels; this channel will not be tagged."
        elif mode.value == "react":
            text += _channel_warning(channel, "add_reactions", "read_message_history")
        elif mode.value == "forum":
            text += _channel_warning(channel, "manage_threads")
        await reply_ephemeral(interaction, text)

    @config.command(name="ignore", description="Stop (or resume) classifying a channel and its threads.")
    @app_commands.describe(channel="The channel", ignored="True to ignore it, False to classify it again")
    async def ignore(
        self,
        interaction: discord.Interaction,
        channel: discord.TextChannel | discord.ForumChannel | discord.VoiceChannel,
        ignored: bool = True,
    ) -> None:
        if not await ensure_admin(interaction):
            return
        assert interaction.guild_id is not None
        await self.bot.guild_configs.set_channel(interaction.guild_id, channel.id, ignored=ignored)
        verb = "ignored from now on" if ignored else "classified again"
        await reply_ephemeral(interaction, f"{channel.mention} is {verb}.")

    @config.command(name="alerts", description="Moderator alert channel and which labels alert.")
    @app_commands.describe(
        channel="Channel for moderator alerts",
        labels="Comma-separated labels that alert, e.g. spam, toxic",
        disable="Stop posting alerts",
    )
    async def alerts(
        self,
        interaction: discord.Interaction,
        channel: discord.TextChannel | None = None,
        labels: str | None = None,
        disable: bool = False,
    ) -> None:
        if not await ensure_admin(interaction):
            return
        fields: dict[str, object] = {}
        if labels is not None:
            try:
                fields["alert_labels"] = parse_labels(labels, self.labels)
            except ValueError as exc:
                await reply_ephemeral(interaction, str(exc))
                return
        if disable:
            fields["alert_channel_id"] = None
        elif channel is not None:
            fields["alert_channel_id"] = channel.id
        if not fields:
            await reply_ephemeral(interaction, "Nothing to change: pass a channel, labels or disable.")
            return
        config = await self._update(interaction, **fields)
        if config is None:
            return
        if config.alert_channel_id is None:
            text = "Alerts are off."
        else:
            text = f"Alerts for **{', '.join(config.alert_labels) or 'no labels'}** go to <#{config.alert_channel_id}>."
            if channel is not None:
                text += _channel_warning(channel, "send_messages", "embed_links")
        await reply_ephemeral(interaction, text)

    @config.command(name="retention", description="How many days message records are kept.")
    @app_commands.describe(days="1 to 3650 days")
    async def retention(self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 3650]) -> None:
        if not await ensure_admin(interaction):
            return
        config = await self._update(interaction, retention_days=days)
        if config is not None:
            await reply_ephemeral(interaction, f"Message records are kept for {config.retention_days} days.")

    @config.command(name="emoji", description="The reaction used for a label in react mode.")
    @app_commands.describe(label="The label", emoji="An emoji, 'none' for no reaction, or 'default'")
    @app_commands.autocomplete(label=label_autocomplete)
    async def emoji(self, interaction: discord.Interaction, label: str, emoji: str) -> None:
        if not await ensure_admin(interaction):
            return
        assert interaction.guild_id is not None
        if label not in self.labels:
            await reply_ephemeral(interaction, f"Unknown label `{label}`. Labels: {', '.join(self.labels)}.")
            return
        value = emoji.strip()
        if not value or len(value) > MAX_EMOJI_LENGTH or (" " in value and value.lower() not in NO_EMOJI):
            await reply_ephemeral(interaction, "Give one emoji (like 🐛 or <:name:id>), `none` or `default`.")
            return
        current = await self.bot.guild_configs.get(interaction.guild_id)
        emoji_map = dict(current.emoji_map)
        if value.lower() == "default":
            emoji_map.pop(label, None)
        else:
            emoji_map[label] = "none" if value.lower() in NO_EMOJI else value
        config = await self._update(interaction, emoji_map=emoji_map)
        if config is not None:
            shown = emoji_for(label, config.emoji_map) or "no reaction"
            default = DEFAULT_EMOJI.get(label) or "no reaction"
            await reply_ephemeral(interaction, f"`{label}` → {shown} (default {default}).")

    # --------------------------------------------------------------- thresholds

    @thresholds.command(name="set", description="Set a label's confidence threshold for this server.")
    @app_commands.describe(label="The label", value="0.0 to 1.0")
    @app_commands.autocomplete(label=label_autocomplete)
    async def thresholds_set(
        self, interaction: discord.Interaction, label: str, value: app_commands.Range[float, 0.0, 1.0]
    ) -> None:
        if not await ensure_admin(interaction):
            return
        assert interaction.guild_id is not None
        if label not in self.labels:
            await reply_ephemeral(interaction, f"Unknown label `{label}`. Labels: {', '.join(self.labels)}.")
            return
        current = await self.bot.guild_configs.get(interaction.guild_id)
        config = await self._update(interaction, thresholds={**current.thresholds, label: float(value)})
        if config is not None:
            await reply_ephemeral(interaction, f"Threshold for `{label}` is now {value:.2f} in this server.")

    @thresholds.command(name="clear", description="Use the model's threshold for a label again.")
    @app_commands.describe(label="The label (or 'all')")
    @app_commands.autocomplete(label=label_autocomplete)
    async def thresholds_clear(self, interaction: discord.Interaction, label: str) -> None:
        if not await ensure_admin(interaction):
            return
        assert interaction.guild_id is not None
        current = await self.bot.guild_configs.get(interaction.guild_id)
        if label == "all":
            remaining: dict[str, float] = {}
        elif label in current.thresholds:
            remaining = {k: v for k, v in current.thresholds.items() if k != label}
        else:
            await reply_ephemeral(interaction, f"`{label}` has no server threshold.")
            return
        if await self._update(interaction, thresholds=remaining) is not None:
            await reply_ephemeral(interaction, f"Cleared: `{label}` uses the model's threshold.")

    @thresholds.command(name="auto", description="Suggest (or apply) thresholds from moderator feedback.")
    @app_commands.describe(
        target="Precision to aim for (default 0.9)",
        min_samples="Judged messages a label needs before it gets a suggestion (default 10)",
        apply="Save the suggestions as this server's thresholds",
    )
    async def thresholds_auto(
        self,
        interaction: discord.Interaction,
        target: app_commands.Range[float, 0.5, 1.0] = DEFAULT_TARGET_PRECISION,
        min_samples: app_commands.Range[int, 3, 10_000] = DEFAULT_MIN_SAMPLES,
        apply: bool = False,
    ) -> None:
        if not await ensure_admin(interaction):
            return
        assert interaction.guild_id is not None
        config = await self.bot.guild_configs.get(interaction.guild_id)
        model_thresholds = dict(self.bot.classifier.thresholds)
        current = {
            label: effective_threshold(label, config.thresholds, model_thresholds) for label in self.labels
        }
        async with self.bot.sessionmaker() as session:
            samples = await feedback_samples(session, interaction.guild_id)
        suggestions = suggest_thresholds(samples, current, target=target, min_samples=min_samples)
        if not suggestions:
            await reply_ephemeral(
                interaction,
                "No moderator feedback yet. Use ✓/✗ on alerts or the **Correct label** message command first.",
            )
            return
        lines = [f"Target precision {target:.0%} (lowest threshold that reaches it on judged messages):"]
        for s in suggestions:
            now_p = f"{s.precision_at_current:.0%}" if s.precision_at_current is not None else "n/a"
            if s.suggested is None:
                lines.append(f"- `{s.label}` ({s.samples} judged): keep {s.current:.2f} [{now_p}] — {s.note}")
            else:
                lines.append(
                    f"- `{s.label}` ({s.samples} judged): {s.current:.2f} [{now_p}] → **{s.suggested:.3f}** "
                    f"[{s.precision_at_suggested:.0%} on {s.kept_at_suggested}] — {s.note}"
                )
        changes = {s.label: s.suggested for s in suggestions if s.changes and s.suggested is not None}
        if apply and changes:
            saved = await self._update(interaction, thresholds={**config.thresholds, **changes})
            if saved is None:
                return
            lines.append(f"Applied to: {', '.join(sorted(changes))}.")
        elif apply:
            lines.append("Nothing to apply.")
        else:
            lines.append("Run again with `apply: True` to save the suggestions.")
        await reply_ephemeral(interaction, "\n".join(lines)[:2000])


async def setup(bot: ChatLabelBot) -> None:
    await bot.add_cog(Config(bot))
