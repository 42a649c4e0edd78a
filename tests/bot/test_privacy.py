"""`/privacy forget-me` and `/privacy info`, driven as slash commands through simcord."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.models import Feedback, MessageRecord, PrivacyOptOut, TagAction


def _feedback(sim, message_id: int, moderator_id: int, source: str = "context_menu") -> Feedback:
    return Feedback(
        guild_id=sim.guild.id, channel_id=sim.general.id, message_id=message_id,
        moderator_id=moderator_id, predicted_label="question", verdict="correct", source=source,
    )


def _tag(sim, message_id: int) -> TagAction:
    return TagAction(
        guild_id=sim.guild.id, channel_id=sim.general.id, message_id=message_id,
        mode="react", action="react", label="question", applied=True,
    )


async def test_forget_me_deletes_everything_about_the_caller_and_stops_storage(sim):
    mine = [await sim.send(sim.alice, sim.general, f"my question {i}") for i in range(3)]
    theirs = await sim.send(sim.bob, sim.general, "bob's answer")
    async with sim.bot.sessionmaker.begin() as session:
        session.add_all([
            _feedback(sim, theirs.id, sim.alice.id),  # feedback alice GAVE (she moderates too)
            _feedback(sim, mine[0].id, sim.mod.id),  # feedback ABOUT alice's message
            _feedback(sim, theirs.id, sim.mod.id),  # unrelated: stays
            _tag(sim, mine[1].id),  # a tag action on alice's message
            _tag(sim, theirs.id),  # unrelated: stays
        ])

    result = await sim.alice.slash(sim.general, "privacy forget-me")
    assert result.ephemeral
    [reply] = result.followups or [result.response]
    assert "Deleted 3 message record(s)" in reply.content and "2 feedback" in reply.content

    assert [r.message_id for r in await sim.rows()] == [theirs.id]
    async with sim.bot.sessionmaker() as session:
        feedback = list(await session.scalars(select(Feedback)))
        tags = list(await session.scalars(select(TagAction)))
        optouts = list(await session.scalars(select(PrivacyOptOut.user_id)))
    assert [(f.message_id, f.moderator_id) for f in feedback] == [(theirs.id, sim.mod.id)]
    assert [t.message_id for t in tags] == [theirs.id]
    assert optouts == [sim.alice.id]

    # Nothing new is stored: not live, not after a restart (opt-outs are persistent).
    await sim.send(sim.alice, sim.general, "am I still tracked?")
    await sim.restart()
    late = await sim.send(sim.alice, sim.general, "what about now?")
    async with sim.bot.sessionmaker() as session:
        assert await session.get(MessageRecord, late.id) is None
    assert [r.message_id for r in await sim.rows()] == [theirs.id]
    assert all(e.message.author.id != sim.alice.id for e in sim.events[4:])


async def test_forget_me_twice_is_harmless(sim):
    await sim.alice.slash(sim.general, "privacy forget-me")
    result = await sim.alice.slash(sim.general, "privacy forget-me")
    [reply] = result.followups or [result.response]
    assert "Deleted 0 message record(s)" in reply.content


async def test_info_is_ephemeral_and_states_this_servers_retention(sim):
    await sim.bot.guild_configs.update(sim.guild.id, retention_days=30)
    result = await sim.bob.slash(sim.general, "privacy info")
    assert result.ephemeral
    text = result.response.content
    assert "never their text" in text and "30 days" in text and "/privacy forget-me" in text
