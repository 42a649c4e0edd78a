"""`/classify`, and the message commands "Classify" (anyone) and "Correct label" (moderators).

Everything answers ephemerally. "Correct label" stores a `feedback` row (ids and labels
only, never the text): verdict "correct" when the moderator picks the predicted label,
"corrected" (with `correct_label`) otherwise.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.db.models import MessageRecord
from bot.permissions import ensure_guild, ensure_moderator, reply_ephemeral
from bot.views import CorrectLabelView

if TYPE_CHECKING:
    from bot.app import ChatLabelBot
    from classifier import Prediction

log = logging.getLogger(__name__)

BAR_WIDTH = 12
MAX_SCORES_SHOWN = 10
FAILED = "Sorry, I couldn't classify that right now. Please try again in a moment."


def format_prediction(prediction: Prediction) -> str:
    """Label, confidence and a small bar per label, best first (fits one message)."""
    verdict = f"**{prediction.label}** ({prediction.confidence:.0%})"
    if prediction.uncertain:
        verdict += " — uncertain (below the label's threshold)"
    ranked = sorted(prediction.scores.items(), key=lambda item: -item[1])[:MAX_SCORES_SHOWN]
    width = max((len(label) for label, _ in ranked), default=0)
    lines = [verdict, "```"]
    for label, score in ranked:
        filled = round(max(0.0, min(1.0, score)) * BAR_WIDTH)
        lines.append(f"{label:<{width}} {'█' * filled}{'·' * (BAR_WIDTH - filled)} {score:6.1%}")
    lines.append("```")
    lines.append(f"-# model {prediction.model_version}")
    return "\n".join(lines)


class Classify(commands.Cog):
    def __init__(self, bot: ChatLabelBot) -> None:
        self.bot = bot
        self.classify_menu = app_commands.ContextMenu(name="Classify", callback=self.classify_message)
        self.classify_menu.guild_only = True
        self.correct_menu = app_commands.ContextMenu(name="Correct label", callback=self.correct_label)
        self.correct_menu.guild_only = True
        self.correct_menu.default_permissions = discord.Permissions(manage_messages=True)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.classify_menu)
        self.bot.tree.add_command(self.correct_menu)

    async def cog_unload(self) -> None:
        for menu in (self.classify_menu, self.correct_menu):
            self.bot.tree.remove_command(menu.name, type=menu.type)

    async def _predict(self, interaction: discord.Interaction, text: str) -> Prediction | None:
        """Classify through the shared micro-batcher; on failure tell the user and return None."""
        try:
            return await self.bot.batcher.classify(text)
        except Exception:
            log.exception("on-demand classification failed")
            await interaction.followup.send(FAILED, ephemeral=True)
            return None

    @app_commands.command(name="classify", description="Classify a piece of text (only you see the answer).")
    @app_commands.guild_only()
    @app_commands.describe(text="The text to classify (not stored)")
    async def classify(self, interaction: discord.Interaction, text: app_commands.Range[str, 1, 4000]) -> None:
        if not await ensure_guild(interaction):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        prediction = await self._predict(interaction, text)
        if prediction is not None:
            await interaction.followup.send(format_prediction(prediction), ephemeral=True)

    async def classify_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        if not await ensure_guild(interaction):
            return
        if not message.content.strip():
            await reply_ephemeral(interaction, "That message has no text to classify.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        prediction = await self._predict(interaction, message.content)
        if prediction is not None:
            await interaction.followup.send(format_prediction(prediction), ephemeral=True)

    async def correct_label(self, interaction: discord.Interaction, message: discord.Message) -> None:
        if not await ensure_moderator(interaction):
            return
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.sessionmaker() as session:
            stored = await session.get(MessageRecord, message.id)
        predicted = stored.label if stored is not None and stored.label else None
        confidence = stored.confidence if stored is not None else None
        if predicted is None and message.content.strip():
            # Not stored (older than the bot, ignored channel, …): judge a fresh prediction.
            prediction = await self._predict(interaction, message.content)
            if prediction is None:
                return
            predicted, confidence = prediction.label, prediction.confidence
        if predicted is None:
            await interaction.followup.send("That message has no text, so it has no label to correct.", ephemeral=True)
            return
        view = CorrectLabelView(
            sessionmaker=self.bot.sessionmaker,
            labels=self.bot.classifier.labels,
            guild_id=interaction.guild_id,
            channel_id=message.channel.id,
            message_id=message.id,
            predicted_label=predicted,
            moderator_id=interaction.user.id,
        )
        said = f"**{predicted}**" + (f" ({confidence:.0%})" if confidence is not None else "")
        await interaction.followup.send(
            f"The model said {said}. Pick the right label:", view=view, ephemeral=True
        )


async def setup(bot: ChatLabelBot) -> None:
    await bot.add_cog(Classify(bot))
