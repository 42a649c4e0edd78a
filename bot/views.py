"""Interactive components: persistent alert verdict buttons and the "Correct label" picker.

The alert buttons are `DynamicItem`s: everything they need (verdict, flagged message, label)
is in their custom_id, so they keep working after a restart without storing any view state.
Register them once with `bot.add_dynamic_items(AlertVerdictButton)` (the tagging cog does).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import discord
from sqlalchemy import select

from bot.db.models import Feedback
from bot.feedback import record_feedback, verdict_for
from bot.permissions import ensure_moderator

log = logging.getLogger(__name__)

ALERT_CUSTOM_ID = re.compile(
    r"cl:alert:(?P<verdict>ok|bad):(?P<channel_id>[0-9]{1,20}):(?P<message_id>[0-9]{1,20}):(?P<label>[A-Za-z0-9_-]{1,40})"
)
LABEL_IN_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
VERDICT_TEXT = {"correct": "✓ correct", "wrong": "✗ wrong", "corrected": "✎ corrected"}
JUDGEMENTS_FIELD = "Moderator verdicts"
MAX_JUDGEMENT_LINES = 10


class AlertVerdictButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=ALERT_CUSTOM_ID):
    """✓ / ✗ under a moderation alert; a click records `feedback` (source "alert")."""

    def __init__(self, verdict: str, channel_id: int, message_id: int, label: str) -> None:
        if verdict not in ("ok", "bad"):
            raise ValueError("verdict must be 'ok' or 'bad'")
        self.verdict = verdict
        self.channel_id = channel_id
        self.message_id = message_id
        self.label = label
        super().__init__(
            discord.ui.Button(
                label="✓ Correct" if verdict == "ok" else "✗ Wrong",
                style=discord.ButtonStyle.success if verdict == "ok" else discord.ButtonStyle.danger,
                custom_id=f"cl:alert:{verdict}:{channel_id}:{message_id}:{label}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AlertVerdictButton:
        return cls(match["verdict"], int(match["channel_id"]), int(match["message_id"]), match["label"])

    async def callback(self, interaction: discord.Interaction) -> None:
        if not await ensure_moderator(interaction):
            return
        assert interaction.guild_id is not None
        bot: Any = interaction.client
        await record_feedback(
            bot.sessionmaker,
            guild_id=interaction.guild_id,
            channel_id=self.channel_id,
            message_id=self.message_id,
            moderator_id=interaction.user.id,
            predicted_label=self.label,
            verdict="correct" if self.verdict == "ok" else "wrong",
            source="alert",
        )
        judgements = await alert_judgements(bot.sessionmaker, self.message_id, self.label)
        message = interaction.message
        embed = message.embeds[0] if message is not None and message.embeds else discord.Embed()
        await interaction.response.edit_message(embed=with_judgements(embed, judgements))


def alert_view(channel_id: int, message_id: int, label: str) -> discord.ui.View | None:
    """The ✓/✗ buttons for one alert, or None when the label cannot go in a custom_id."""
    if not LABEL_IN_CUSTOM_ID.fullmatch(label):
        log.warning("label %r cannot be encoded in an alert button; posting without buttons", label)
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(AlertVerdictButton("ok", channel_id, message_id, label))
    view.add_item(AlertVerdictButton("bad", channel_id, message_id, label))
    return view


async def alert_judgements(sessionmaker: Any, message_id: int, label: str) -> list[tuple[int, str]]:
    """(moderator id, verdict) of every alert verdict on this message+label, oldest first."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Feedback.moderator_id, Feedback.verdict)
            .where(
                Feedback.message_id == message_id,
                Feedback.source == "alert",
                Feedback.predicted_label == label,
            )
            .order_by(Feedback.created_at, Feedback.id)
        )
        return [(moderator_id, verdict) for moderator_id, verdict in rows]


def with_judgements(embed: discord.Embed, judgements: Sequence[tuple[int, str]]) -> discord.Embed:
    """A copy of the alert embed whose verdicts field lists who judged it and how."""
    embed = embed.copy()
    for index, field in reversed(list(enumerate(embed.fields))):
        if field.name == JUDGEMENTS_FIELD:
            embed.remove_field(index)
    lines = [f"{VERDICT_TEXT.get(verdict, verdict)} — <@{moderator}>" for moderator, verdict in judgements]
    if len(lines) > MAX_JUDGEMENT_LINES:
        lines = [*lines[: MAX_JUDGEMENT_LINES - 1], f"… and {len(lines) - MAX_JUDGEMENT_LINES + 1} more"]
    if lines:
        embed.add_field(name=JUDGEMENTS_FIELD, value="\n".join(lines), inline=False)
    return embed


class CorrectLabelView(discord.ui.View):
    """Ephemeral label picker behind the "Correct label" message command."""

    def __init__(
        self,
        *,
        sessionmaker: Any,
        labels: Sequence[str],
        guild_id: int,
        channel_id: int,
        message_id: int,
        predicted_label: str | None,
        moderator_id: int,
        timeout: float = 180,
    ) -> None:
        super().__init__(timeout=timeout)
        self.sessionmaker = sessionmaker
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.message_id = message_id
        self.predicted_label = predicted_label
        self.moderator_id = moderator_id
        self.chosen: str | None = None
        options = [
            discord.SelectOption(
                label=label,
                value=label,
                description="the model's prediction" if label == predicted_label else None,
            )
            for label in list(labels)[:25]  # Discord's limit per select menu
        ]
        self.picker: discord.ui.Select[CorrectLabelView] = discord.ui.Select(
            placeholder="Pick the right label", options=options, min_values=1, max_values=1
        )
        self.picker.callback = self._picked  # type: ignore[method-assign]
        self.add_item(self.picker)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.moderator_id

    async def _picked(self, interaction: discord.Interaction) -> None:
        chosen = self.picker.values[0]
        verdict = verdict_for(self.predicted_label, chosen)
        await record_feedback(
            self.sessionmaker,
            guild_id=self.guild_id,
            channel_id=self.channel_id,
            message_id=self.message_id,
            moderator_id=self.moderator_id,
            predicted_label=self.predicted_label,
            correct_label=None if verdict == "correct" else chosen,
            verdict=verdict,
            source="context_menu",
        )
        self.chosen = chosen
        self.stop()
        said = f"the model said **{self.predicted_label}**" if self.predicted_label else "no stored prediction"
        await interaction.response.edit_message(
            content=f"Recorded **{chosen}** ({VERDICT_TEXT[verdict]}; {said}). Thanks!", view=None
        )
