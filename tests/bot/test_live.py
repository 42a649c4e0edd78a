"""Live classification through simcord: the real bot, a temp DB and the tiny ONNX model."""

from __future__ import annotations

import math
from datetime import UTC

import discord
from sqlalchemy import func, select

from bot.db.models import (
    ChannelSettings,
    Feedback,
    GuildSettings,
    MessageRecord,
    SummaryPosted,
    TagAction,
)


async def count(sim, model) -> int:
    await sim.flush()
    async with sim.bot.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_message_becomes_a_row_with_every_field(sim):
    msg = await sim.send(sim.alice, sim.general, "anyone know why pip hangs on install?")
    row = await sim.row(msg.id)
    assert row is not None
    labels = sim.bot.classifier.labels
    assert (row.guild_id, row.channel_id, row.parent_id) == (sim.guild.id, sim.general.id, None)
    assert row.author_id == sim.alice.id and row.reply_to_id is None
    assert row.created_at == msg.created_at and row.created_at.tzinfo is UTC
    assert row.edited_at is None and row.attachment_only is False
    assert row.label in labels and set(row.scores) == set(labels)
    assert math.isclose(sum(row.scores.values()), 1.0, rel_tol=1e-4)  # single-label softmax
    assert math.isclose(row.confidence, row.scores[row.label], rel_tol=1e-6)
    assert row.model_version == sim.bot.classifier.version
    assert row.classified_at.tzinfo is UTC
    [event] = sim.events
    assert event.message.id == msg.id and event.is_edit is False and not event.backfill
    assert event.prediction.label == row.label


async def test_reply_thread_and_forum_post_locations(sim):
    question = await sim.send(sim.alice, sim.general, "how do I make a venv?")
    reply = await sim.send(sim.bob, sim.general, "python -m venv .venv", reply_to=question)
    in_thread = await sim.send(sim.alice, sim.thread, "still stuck on this one")
    in_forum = await sim.send(sim.bob, sim.forum_post, "pip hangs at 'Resolving dependencies'")

    assert (await sim.row(reply.id)).reply_to_id == question.id
    thread_row = await sim.row(in_thread.id)
    assert (thread_row.channel_id, thread_row.parent_id) == (sim.thread.id, sim.general.id)
    forum_row = await sim.row(in_forum.id)
    assert (forum_row.channel_id, forum_row.parent_id) == (sim.forum_post.id, sim.forum.id)


async def test_no_message_text_anywhere_in_the_database_files(sim):
    texts = [
        "zebra-unicorn-7731 why does my import fail",
        "quokka-marmalade-5519 thanks that worked",
    ]
    for text in texts:
        await sim.send(sim.alice, sim.general, text)
    edited = await sim.send(sim.bob, sim.general, "walrus-teapot-2214 original")
    await sim.bob.edit(edited, "walrus-teapot-2214 edited version")
    assert len(await sim.rows()) == 3
    await sim.bot.engine.dispose()  # close connections so every page is on disk
    files = sorted(sim.db_path().parent.glob(sim.db_path().name + "*"))
    blob = b"".join(path.read_bytes() for path in files)
    assert blob, "database files are empty?"
    for marker in (b"zebra-unicorn", b"quokka-marmalade", b"walrus-teapot"):
        assert marker not in blob


async def test_edit_reclassifies_only_when_the_content_changed(sim):
    msg = await sim.send(sim.alice, sim.general, "pip hangs forever")
    before = await sim.row(msg.id)
    await sim.env.advance_time(30)

    await sim.alice.edit(msg, "pip hangs forever")  # same text: nothing to do
    same = await sim.row(msg.id)
    assert same.classified_at == before.classified_at and same.edited_at is None
    assert [e.is_edit for e in sim.events] == [False]

    await sim.alice.edit(msg, "never mind, it was my proxy settings. solved!")
    after = await sim.row(msg.id)
    assert after.edited_at is not None and after.edited_at > before.created_at
    assert after.classified_at > before.classified_at
    assert after.scores != before.scores
    assert after.created_at == before.created_at and after.author_id == before.author_id
    assert [e.is_edit for e in sim.events] == [False, True]


async def test_uncached_edit_is_reclassified_once(sim):
    msg = await sim.send(sim.alice, sim.general, "is asyncio thread safe?")
    sim.bot._connection._messages.clear()  # as if the message fell out of discord.py's cache
    await sim.env.advance_time(5)
    await sim.alice.edit(msg, "is asyncio.Queue thread safe?")
    row = await sim.row(msg.id)
    assert row.edited_at is not None
    assert [e.is_edit for e in sim.events] == [False, True]


async def test_delete_and_bulk_delete_remove_rows(sim):
    keep = await sim.send(sim.alice, sim.general, "this one stays")
    gone = await sim.send(sim.alice, sim.general, "oops wrong channel")
    bulk = [await sim.send(sim.bob, sim.random, f"spam spam {i}") for i in range(3)]
    await sim.alice.delete(gone)
    assert await sim.row(gone.id) is None

    sim.env.backend.bulk_delete_messages(sim.random.id, [m.id for m in bulk])
    await sim.settle()
    assert [r.message_id for r in await sim.rows()] == [keep.id]


async def test_deleting_a_channel_or_thread_removes_its_rows(sim):
    in_thread = await sim.send(sim.alice, sim.thread, "thread message")
    in_forum = await sim.send(sim.bob, sim.forum_post, "forum post message")
    in_random = await sim.send(sim.bob, sim.random, "random message")
    in_general = await sim.send(sim.alice, sim.general, "general message")
    async with sim.bot.sessionmaker.begin() as session:
        session.add(TagAction(guild_id=sim.guild.id, channel_id=sim.forum_post.id, message_id=in_forum.id,
                              mode="shadow", action="forum_tag", label="comment", applied=False))
    await sim.flush()

    sim.env.backend.delete_channel(sim.forum_post.id)  # a thread: THREAD_DELETE
    await sim.settle()
    assert await sim.row(in_forum.id) is None
    assert await count(sim, TagAction) == 0

    sim.env.backend.delete_channel(sim.general.id)  # a channel: its threads' rows go too
    await sim.settle()
    assert await sim.row(in_general.id) is None and await sim.row(in_thread.id) is None
    assert [r.message_id for r in await sim.rows()] == [in_random.id]


async def test_leaving_a_guild_purges_every_table(sim):
    msg = await sim.send(sim.alice, sim.general, "hello")
    await sim.bot.guild_configs.update(sim.guild.id, retention_days=30)
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.general.id, tagging_mode="shadow")
    async with sim.bot.sessionmaker.begin() as session:
        session.add(Feedback(guild_id=sim.guild.id, channel_id=sim.general.id, message_id=msg.id,
                             moderator_id=sim.mod.id, predicted_label="comment", verdict="correct",
                             source="context_menu"))
        session.add(TagAction(guild_id=sim.guild.id, channel_id=sim.general.id, message_id=msg.id,
                              mode="shadow", action="react", label="comment", applied=False))
        session.add(SummaryPosted(guild_id=sim.guild.id, week_start=msg.created_at.date()))
        # Another guild's row must survive.
        session.add(GuildSettings(guild_id=42, retention_days=7))
    sim.env.backend.remove_guild(sim.guild.id)
    await sim.settle()
    for model in (MessageRecord, ChannelSettings, Feedback, TagAction, SummaryPosted):
        assert await count(sim, model) == 0, model.__tablename__
    async with sim.bot.sessionmaker() as session:
        assert list(await session.scalars(select(GuildSettings.guild_id))) == [42]
    assert sim.bot.guild_configs.cached(sim.guild.id) is None


async def test_bots_webhooks_system_and_empty_messages_are_skipped(sim):
    helper_bot = sim.guild.add_member(sim.env.create_user("ci-bot", bot=True))
    await sim.send(helper_bot, sim.general, "build #123 passed")
    hook = sim.guild.create_webhook(sim.general, "GitHub")
    await hook.send("new commit pushed to main")
    sim.env.backend.create_message(  # embed-only: no text to classify
        sim.general.id, sim.alice.id, "", embeds=[discord.Embed(title="link preview").to_dict()]
    )
    await sim.settle()
    # The thread fixture already produced a THREAD_CREATED system message in #general.
    assert any(m.type is discord.MessageType.thread_created for m in sim.general.history())
    assert await sim.rows() == []
    assert sim.events == []


async def test_attachment_only_message_is_recorded_without_a_label(sim):
    msg = await sim.send(sim.alice, sim.general, "", attachments=[("screenshot.png", b"\x89PNG...")])
    row = await sim.row(msg.id)
    assert row.attachment_only is True
    assert row.label is None and row.confidence is None and row.scores is None
    assert sim.events == []  # nothing was classified, so nothing to tag


async def test_ignored_channel_and_its_threads_are_skipped(sim):
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.general.id, ignored=True)
    await sim.send(sim.alice, sim.general, "in an ignored channel")
    await sim.send(sim.alice, sim.thread, "in a thread of an ignored channel")
    kept = await sim.send(sim.alice, sim.random, "in a normal channel")
    assert [r.message_id for r in await sim.rows()] == [kept.id]
