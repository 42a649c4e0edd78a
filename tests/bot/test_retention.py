"""The hourly retention job deletes rows older than each guild's retention window."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.db.models import Feedback, MessageRecord, TagAction
from bot.db.writer import MessageRow

OTHER_GUILD = 4242


def stored_row(message_id: int, guild_id: int, created_at) -> MessageRow:
    return MessageRow(
        message_id=message_id, guild_id=guild_id, channel_id=1, parent_id=None, author_id=2,
        reply_to_id=None, created_at=created_at, edited_at=None, label="comment",
        confidence=0.5, scores={"comment": 0.5}, uncertain=False, model_version="v",
        attachment_only=False, classified_at=created_at,
    )


async def test_hourly_job_applies_each_guilds_retention(sim):
    now = sim.env.now()
    await sim.bot.guild_configs.update(sim.guild.id, retention_days=30)
    await sim.bot.writer.upsert([
        stored_row(1, sim.guild.id, now - timedelta(days=40)),  # past this guild's 30 days
        stored_row(2, sim.guild.id, now - timedelta(days=10)),
        stored_row(3, OTHER_GUILD, now - timedelta(days=100)),  # past the default 90 days
        stored_row(4, OTHER_GUILD, now - timedelta(days=60)),
    ])
    live = await sim.send(sim.alice, sim.general, "fresh message")
    async with sim.bot.sessionmaker.begin() as session:
        session.add_all([
            Feedback(guild_id=sim.guild.id, channel_id=1, message_id=1, moderator_id=9,
                     predicted_label="comment", verdict="wrong", source="alert",
                     created_at=now - timedelta(days=40)),
            Feedback(guild_id=sim.guild.id, channel_id=1, message_id=2, moderator_id=9,
                     predicted_label="comment", verdict="correct", source="alert",
                     created_at=now - timedelta(days=10)),
            TagAction(guild_id=OTHER_GUILD, channel_id=1, message_id=3, mode="react",
                      action="react", label="comment", applied=True,
                      created_at=now - timedelta(days=100)),
        ])

    await sim.env.advance_time(3600)  # the next hourly pass runs

    assert [r.message_id for r in await sim.rows()] == [2, 4, live.id]
    async with sim.bot.sessionmaker() as session:
        assert list(await session.scalars(select(Feedback.message_id))) == [2]
        assert list(await session.scalars(select(TagAction.message_id))) == []
        assert await session.get(MessageRecord, live.id) is not None
