"""`/privacy forget-me` and `/privacy info`: what we keep about a user, and erasing it.

Forget-me records an opt-out first (so nothing new is stored, even for messages being
classified right now), waits for queued writes, then deletes every row about the caller:
messages they wrote (and the tag actions and feedback attached to those messages), and
feedback they gave as a moderator. Both replies are ephemeral.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.sqlite import insert

from bot.db.models import Feedback, MessageRecord, PrivacyOptOut, TagAction

if TYPE_CHECKING:
    from bot.app import ChatLabelBot

log = logging.getLogger(__name__)


async def forget_user(bot: ChatLabelBot, user_id: int) -> dict[str, int]:
    """Opt the user out and delete everything about them; returns rows deleted per table."""
    bot.pipeline.optouts.add(user_id)  # from now on nothing new is written for them
    async with bot.sessionmaker.begin() as session:
        await session.execute(
            insert(PrivacyOptOut)
            .values(user_id=user_id, created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=[PrivacyOptOut.user_id])
        )
    await bot.writer.flush()  # rows queued before the opt-out must not land after the purge
    authored = select(MessageRecord.message_id).where(MessageRecord.author_id == user_id)
    async with bot.sessionmaker.begin() as session:
        tags = await session.execute(delete(TagAction).where(TagAction.message_id.in_(authored)))
        feedback = await session.execute(
            delete(Feedback).where(
                or_(Feedback.moderator_id == user_id, Feedback.message_id.in_(authored))
            )
        )
        messages = await session.execute(
            delete(MessageRecord).where(MessageRecord.author_id == user_id)
        )
    counts = {
        "messages": messages.rowcount or 0,
        "feedback": feedback.rowcount or 0,
        "tag_actions": tags.rowcount or 0,
    }
    log.info("forget-me: user %s opted out; deleted %s", user_id, counts)
    return counts


def info_text(retention_days: int) -> str:
    return (
        "**What this bot stores about messages** (never their text):\n"
        "• message, channel, server, author and reply-to ids, and when it was sent/edited\n"
        "• the predicted label (question, answer, bug report, ...), its confidence and scores\n"
        "• moderators' feedback on predictions, and which tags/alerts the bot applied\n"
        f"**How long:** {retention_days} days in this server, then deleted automatically. "
        "Deleted messages are removed at once; everything goes when the bot leaves the server.\n"
        "**Opt out:** `/privacy forget-me` deletes all of it about you and stops storing new rows."
    )


class Privacy(commands.GroupCog, group_name="privacy", group_description="Your data and this bot"):
    def __init__(self, bot: ChatLabelBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(
        name="forget-me", description="Delete everything stored about you and stop storing more"
    )
    async def forget_me(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        counts = await forget_user(self.bot, interaction.user.id)
        await interaction.followup.send(
            f"Done. Deleted {counts['messages']} message record(s) and "
            f"{counts['feedback']} feedback record(s) about you. "
            "Nothing new will be stored about your messages.",
            ephemeral=True,
        )

    @app_commands.command(name="info", description="What this bot stores and for how long")
    async def info(self, interaction: discord.Interaction) -> None:
        retention = self.bot.settings.default_retention_days
        if interaction.guild_id is not None:
            config = await self.bot.guild_configs.get(interaction.guild_id)
            retention = config.retention_days
        opted_out = interaction.user.id in self.bot.pipeline.optouts
        text = info_text(retention)
        if opted_out:
            text += "\n_You have opted out: nothing is stored about your messages._"
        await interaction.response.send_message(text, ephemeral=True)


async def setup(bot: ChatLabelBot) -> None:
    await bot.add_cog(Privacy(bot))
