"""Backfill after downtime: messages sent while the bot was away get rows, exactly once."""

from __future__ import annotations

from datetime import timedelta

import discord
from simcord.builders import ChannelHandle


async def test_restart_backfills_missed_messages_once(sim):
    live = await sim.send(sim.alice, sim.general, "posted while the bot was up")
    # The bot goes down; people keep talking in channels, threads and forum posts.
    missed = [
        sim.seed_history(sim.alice, sim.general, "did anyone see my question?"),
        sim.seed_history(sim.bob, sim.general, "try clearing the pip cache"),
        sim.seed_history(sim.bob, sim.thread, "same problem here"),
        sim.seed_history(sim.alice, sim.forum_post, "pinning the version fixed it"),
        sim.seed_history(sim.alice, sim.random, "", attachments=[("log.txt", b"trace")]),
    ]
    sim.seed_history(sim.env.create_user("ci-bot", bot=True), sim.general, "bots are skipped")

    bot = await sim.restart()  # READY → on_ready → backfill
    rows = {row.message_id: row for row in await sim.rows()}
    assert set(rows) == {live.id, *missed}
    assert rows[missed[2]].parent_id == sim.general.id
    assert rows[missed[3]].parent_id == sim.forum.id
    assert rows[missed[4]].attachment_only and rows[missed[4]].label is None
    backfilled = [e for e in sim.events if e.backfill]
    assert sorted(e.message.id for e in backfilled) == sorted(missed[:4])  # attachment-only: no event
    assert all(isinstance(e.message, discord.Message) for e in backfilled)
    assert bot.metrics.backfill_messages._value.get() == 5

    # A second start (and a resume) finds nothing new: no duplicates, no re-dispatch.
    await sim.restart()
    sim.env.backend.emit("RESUMED", {})  # the gateway's RESUMED → on_resumed → backfill
    await sim.settle()
    assert len(await sim.rows()) == 6
    assert len([e for e in sim.events if e.backfill]) == 4


async def test_resume_backfills_only_the_gap(sim):
    first = await sim.send(sim.alice, sim.general, "before the disconnect")
    await sim.dispatch("disconnect")
    gap = sim.seed_history(sim.bob, sim.general, "sent during the disconnect")
    # The first live message after reconnecting lands before backfill gets to the channel.
    after = await sim.send(sim.alice, sim.general, "after reconnecting")
    sim.env.backend.emit("RESUMED", {})  # the gateway's RESUMED → on_resumed → backfill
    await sim.settle()
    assert [r.message_id for r in await sim.rows()] == sorted([first.id, gap, after.id])
    assert [e.message.id for e in sim.events if e.backfill] == [gap]


async def test_first_start_reads_back_to_the_retention_window_and_respects_the_cap(sim):
    old = sim.seed_history(sim.alice, sim.random, "from long ago", age=timedelta(days=100))
    kept = sim.seed_history(sim.alice, sim.random, "inside the window", age=timedelta(days=80))
    recent = [sim.seed_history(sim.bob, sim.random, f"recent message {i}") for i in range(4)]
    assert discord.utils.snowflake_time(old) < sim.env.now() - timedelta(days=90)

    await sim.restart(backfill_per_channel=3)
    stored = [r.message_id for r in await sim.rows(channel_id=sim.random.id)]
    assert stored == [kept, *recent[:2]]  # oldest first, at most 3 per channel per pass
    await sim.restart(backfill_per_channel=3)  # the next pass continues where it stopped
    stored = [r.message_id for r in await sim.rows(channel_id=sim.random.id)]
    assert stored == [kept, *recent]
    assert old not in stored  # older than the 90-day retention window


async def test_ignored_channels_and_opted_out_users_are_not_backfilled(sim):
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.random.id, ignored=True)
    await sim.mod.slash(sim.general, "privacy forget-me")
    sim.seed_history(sim.alice, sim.random, "ignored channel")
    sim.seed_history(sim.mod, sim.general, "opted-out author")
    kept = sim.seed_history(sim.bob, sim.general, "normal")
    await sim.restart()
    assert [r.message_id for r in await sim.rows()] == [kept]


def _archived_thread(sim, parent, name: str, archived_ago: timedelta):
    """A thread archived while the bot was down (no gateway events), `archived_ago` back."""
    thread = sim.env.backend.create_thread(parent.id, name, sim.alice.id, broadcast=False)
    thread.thread_metadata.archived = True
    thread.thread_metadata.archive_timestamp = (sim.env.now() - archived_ago).isoformat()
    return ChannelHandle(sim.env, sim.guild, thread)


async def test_threads_archived_while_away_are_backfilled(sim):
    live = await sim.send(sim.alice, sim.general, "posted while the bot was up")
    await sim.env.advance_time(3600)  # the bot was last up an hour ago
    # Down: a thread and a forum post get replies and are archived before the bot is back.
    thread = _archived_thread(sim, sim.general, "quick-question", timedelta(minutes=5))
    post = _archived_thread(sim, sim.forum, "solved: pip hangs", timedelta(minutes=1))
    missed = [
        sim.seed_history(sim.bob, thread, "which python do you have?"),
        sim.seed_history(sim.alice, post, "pinning the version fixed it"),
    ]
    # Archived long before the bot last saw the guild: nothing in it can be new.
    stale = _archived_thread(sim, sim.general, "old-news", timedelta(days=3))
    old = sim.seed_history(sim.bob, stale, "from last week", age=timedelta(days=4))

    await sim.restart()
    stored = {row.message_id: row for row in await sim.rows()}
    assert set(stored) == {live.id, *missed}
    assert old not in stored
    assert stored[missed[0]].parent_id == sim.general.id
    assert stored[missed[1]].parent_id == sim.forum.id


async def test_archived_threads_can_be_left_out(sim):
    await sim.send(sim.alice, sim.general, "posted while the bot was up")
    await sim.env.advance_time(3600)
    thread = _archived_thread(sim, sim.general, "quick-question", timedelta(minutes=5))
    missed = sim.seed_history(sim.bob, thread, "which python do you have?")
    await sim.restart(backfill_archived_threads=0)
    assert await sim.row(missed) is None
    await sim.restart(backfill_archived_threads=50)
    assert await sim.row(missed) is not None
