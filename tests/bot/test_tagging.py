"""Automatic tagging per channel mode (react / shadow / forum / off), through simcord."""

from __future__ import annotations

import itertools

import discord
import pytest
from simcord.backend.models import Overwrite
from simcord.enums import OverwriteType
from sqlalchemy import select

from bot.db.models import TagAction
from bot.exts.tagging import (
    confident_labels,
    emoji_for,
    excerpt,
    is_forum_starter,
    tag_matches,
    tag_name_for,
)
from tests.bot._features_helpers import ScriptedBatcher, forum_post, install_scripted


@pytest.fixture
def scripted(sim):
    return install_scripted(sim.bot)


async def _actions(sim) -> list[TagAction]:
    async with sim.bot.sessionmaker() as session:
        return list(await session.scalars(select(TagAction).order_by(TagAction.id)))


def _bot_reactions(sim, channel, message_id: int) -> list[str]:
    """Emoji the BOT reacted with on a message (from simcord's record of who reacted)."""
    stored = sim.env.backend.get_message(channel.id, message_id)
    return [reaction.emoji for reaction in stored.reactions if sim.bot.user.id in reaction.user_ids]


def _applied_tag_names(sim, thread) -> set[str]:
    cached = sim.bot.get_channel(thread.id)
    return {tag.name for tag in cached.applied_tags}


# ------------------------------------------------------------------ react mode


async def test_react_mode_adds_the_label_emoji_and_records_it(sim, scripted):
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.general.id, tagging_mode="react")
    question = await sim.send(sim.alice, sim.general, "[question 0.9] how do I pin numpy?")
    chatter = await sim.send(sim.bob, sim.general, "[comment 0.9] nice weather")
    unsure = await sim.send(sim.bob, sim.general, "[bug_report 0.2] maybe a bug?")
    await sim.env.advance_time(2)  # let the rate-limited queue drain

    assert _bot_reactions(sim, sim.general, question.id) == ["❓"]
    assert _bot_reactions(sim, sim.general, chatter.id) == []  # comment has no emoji
    assert _bot_reactions(sim, sim.general, unsure.id) == []  # below the threshold
    (action,) = await _actions(sim)
    assert (action.message_id, action.action, action.label, action.mode, action.applied) == (
        question.id, "react", "question", "react", True,
    )


async def test_threads_follow_their_parent_channel_mode(sim, scripted):
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.general.id, tagging_mode="react")
    in_thread = await sim.send(sim.bob, sim.thread, "[bug_report 0.95] pip crashes")
    elsewhere = await sim.send(sim.bob, sim.random, "[bug_report 0.95] pip crashes")  # mode off
    await sim.env.advance_time(1)
    assert _bot_reactions(sim, sim.thread, in_thread.id) == ["🐛"]
    assert _bot_reactions(sim, sim.random, elsewhere.id) == []


async def test_guild_thresholds_and_emoji_map_override_the_defaults(sim, scripted):
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.general.id, tagging_mode="react")
    await sim.bot.guild_configs.update(
        sim.guild.id, thresholds={"question": 0.95, "suggestion": 0.1}, emoji_map={"suggestion": "🙏", "bug_report": "none"}
    )
    strict = await sim.send(sim.alice, sim.general, "[question 0.9] how?")
    lenient = await sim.send(sim.alice, sim.general, "[suggestion 0.15] add dark mode?")
    silenced = await sim.send(sim.alice, sim.general, "[bug_report 0.99] broken")
    await sim.env.advance_time(2)
    assert _bot_reactions(sim, sim.general, strict.id) == []
    assert _bot_reactions(sim, sim.general, lenient.id) == ["🙏"]
    assert _bot_reactions(sim, sim.general, silenced.id) == []


async def test_edits_do_not_add_reactions(sim, scripted):
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.general.id, tagging_mode="react")
    message = await sim.send(sim.alice, sim.general, "[comment 0.9] hello")
    await sim.alice.edit(message, "[question 0.9] how do I install it?")
    await sim.env.advance_time(1)
    assert any(event.is_edit for event in sim.events)  # the edit was classified
    assert _bot_reactions(sim, sim.general, message.id) == []
    assert await _actions(sim) == []


async def test_reactions_are_rate_limited_per_channel(sim, scripted):
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.general.id, tagging_mode="react")
    reacted_at = []

    async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
        if payload.user_id == sim.bot.user.id:
            reacted_at.append(discord.utils.utcnow())

    sim.bot.add_listener(on_raw_reaction_add)
    # A burst: five messages arrive at the same (virtual) instant, before the bot runs.
    messages = [sim.env.backend.create_message(sim.general.id, sim.alice.id, f"[question 0.9] q{i}") for i in range(5)]
    await sim.settle()
    await sim.env.advance_time(5)
    assert all(_bot_reactions(sim, sim.general, m.id) == ["❓"] for m in messages)
    assert len({m.timestamp for m in messages}) == 1
    # ... and the reactions were spread out by the per-channel bucket.
    assert len(reacted_at) == 5
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(reacted_at)]
    assert all(gap >= 0.25 - 1e-6 for gap in gaps), gaps


async def test_no_reaction_without_permission(sim, scripted):
    general = sim.env.backend.get_channel(sim.general.id)
    deny = Overwrite(
        target_id=sim.bot.user.id, type=OverwriteType.MEMBER, deny=discord.Permissions(add_reactions=True).value
    )
    sim.env.backend.edit_channel(sim.general.id, {}, overwrites=[*general.overwrites, deny])
    await sim.settle()
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.general.id, tagging_mode="react")
    message = await sim.send(sim.alice, sim.general, "[question 0.9] how?")
    await sim.env.advance_time(1)
    assert _bot_reactions(sim, sim.general, message.id) == []
    assert await _actions(sim) == []


# ------------------------------------------------------------------ shadow / off


async def test_shadow_mode_does_nothing_visible_but_records_what_it_would_do(sim, scripted):
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.general.id, tagging_mode="shadow")
    message = await sim.send(sim.alice, sim.general, "[question 0.9] how?")
    await sim.send(sim.alice, sim.general, "[comment 0.9] ok")  # no emoji: nothing to record
    await sim.env.advance_time(1)
    assert _bot_reactions(sim, sim.general, message.id) == []
    assert not [r for r in sim.env.http_requests if "/reactions/" in r.path]
    (action,) = await _actions(sim)
    assert (action.message_id, action.mode, action.action, action.label, action.applied) == (
        message.id, "shadow", "react", "question", False,
    )


async def test_off_mode_does_nothing(sim, scripted):
    message = await sim.send(sim.alice, sim.general, "[question 0.9] how?")
    await sim.env.advance_time(1)
    assert _bot_reactions(sim, sim.general, message.id) == []
    assert await _actions(sim) == []


# ------------------------------------------------------------------ forum mode


async def test_forum_mode_applies_the_matching_existing_tag(sim, scripted):
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.forum.id, tagging_mode="forum")
    thread, starter = await forum_post(sim.env, sim.guild, sim.forum, sim.alice, "pip segfaults", "[bug_report 0.9] pip segfaults on 3.13")
    await sim.env.advance_time(1)
    assert starter.id == thread.id
    assert _applied_tag_names(sim, thread) == {"bug_report"}
    # A reply inside the post is not the starter: no more tags.
    await sim.send(sim.bob, thread, "[question 0.9] which version?")
    await sim.env.advance_time(1)
    assert _applied_tag_names(sim, thread) == {"bug_report"}
    (action,) = await _actions(sim)
    assert (action.action, action.label, action.mode, action.applied, action.message_id) == (
        "forum_tag", "bug_report", "forum", True, thread.id,
    )


def _forum_with_tags(sim, name: str, tags: list[str]):
    forum = sim.guild.create_forum_channel(name)
    sim.env.backend.edit_channel(
        forum.id,
        {"available_tags": [
            {"id": str(sim.env.backend.snowflake()), "name": tag, "moderated": False, "emoji_id": None, "emoji_name": None}
            for tag in tags
        ]},
    )
    return forum


async def test_forum_mode_matches_loosely_and_creates_missing_tags(sim, scripted):
    forum = _forum_with_tags(sim, "support", ["Bug", "Help"])
    await sim.settle()
    await sim.bot.guild_configs.set_channel(sim.guild.id, forum.id, tagging_mode="forum")
    bug, _ = await forum_post(sim.env, sim.guild, forum, sim.alice, "crash", "[bug_report 0.9] crash")
    idea, _ = await forum_post(sim.env, sim.guild, forum, sim.bob, "idea", "[suggestion 0.9] add a flag")
    again, _ = await forum_post(sim.env, sim.guild, forum, sim.bob, "idea 2", "[suggestion 0.9] another flag")
    await sim.env.advance_time(2)
    assert _applied_tag_names(sim, bug) == {"Bug"}  # bug_report ~ "Bug"
    assert _applied_tag_names(sim, idea) == {"Suggestion"}  # created
    assert _applied_tag_names(sim, again) == {"Suggestion"}  # reused, not created twice
    names = [tag["name"] for tag in sim.env.backend.get_channel(forum.id).available_tags]
    assert sorted(names) == ["Bug", "Help", "Suggestion"]


async def test_forum_tags_are_not_created_without_manage_channels_or_past_20(sim, scripted):
    locked = _forum_with_tags(sim, "locked", ["Help"])
    deny = Overwrite(
        target_id=sim.bot.user.id, type=OverwriteType.MEMBER, deny=discord.Permissions(manage_channels=True).value
    )
    sim.env.backend.edit_channel(locked.id, {}, overwrites=[deny])
    full = _forum_with_tags(sim, "full", [f"topic {i}" for i in range(20)])
    await sim.settle()
    for forum in (locked, full):
        await sim.bot.guild_configs.set_channel(sim.guild.id, forum.id, tagging_mode="forum")
    a, _ = await forum_post(sim.env, sim.guild, locked, sim.alice, "idea", "[suggestion 0.9] idea")
    b, _ = await forum_post(sim.env, sim.guild, full, sim.alice, "idea", "[suggestion 0.9] idea")
    await sim.env.advance_time(2)
    assert _applied_tag_names(sim, a) == set()
    assert _applied_tag_names(sim, b) == set()
    assert len(sim.env.backend.get_channel(full.id).available_tags) == 20
    assert [tag["name"] for tag in sim.env.backend.get_channel(locked.id).available_tags] == ["Help"]


async def test_a_post_never_gets_more_than_five_tags(sim, scripted):
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.forum.id, tagging_mode="forum")
    tags = {tag["name"]: int(tag["id"]) for tag in sim.env.backend.get_channel(sim.forum.id).available_tags}
    backend = sim.env.backend
    results = {}
    for already in (4, 5):
        chosen = [tags[name] for name in ("question", "answer", "comment", "spam", "toxic")[:already]]
        thread = backend.create_thread(sim.forum.id, f"post {already}", sim.alice.id, broadcast=False, applied_tags=chosen)
        backend.announce_thread_create(thread)
        starter = backend.prepare_message(thread.id, sim.alice.id, "[bug_report 0.9] crash")
        starter.id = thread.id
        backend.commit_message(starter)
        await sim.settle()
        results[already] = thread
    await sim.env.advance_time(2)
    assert len(backend.get_channel(results[4].id).applied_tags) == 5
    assert tags["bug_report"] in backend.get_channel(results[4].id).applied_tags
    assert tags["bug_report"] not in backend.get_channel(results[5].id).applied_tags


async def test_forum_posts_in_shadow_mode_record_forum_tags(sim, scripted):
    await sim.bot.guild_configs.set_channel(sim.guild.id, sim.forum.id, tagging_mode="shadow")
    thread, _ = await forum_post(sim.env, sim.guild, sim.forum, sim.alice, "crash", "[bug_report 0.9] crash")
    await sim.env.advance_time(1)
    assert _applied_tag_names(sim, thread) == set()
    (action,) = await _actions(sim)
    assert (action.action, action.label, action.applied) == ("forum_tag", "bug_report", False)


# ------------------------------------------------------------------ pure rules


def test_tag_name_matching():
    assert tag_matches("Bug report", "bug_report")
    assert tag_matches("bug-report", "bug_report")
    assert tag_matches("BUGS", "bug_report")
    assert tag_matches("Questions", "question")
    assert not tag_matches("Bug", "question")
    assert tag_name_for("bug_report") == "Bug report"
    assert len(tag_name_for("a_very_long_label_name_indeed")) <= 20


def test_emoji_defaults_and_overrides():
    assert emoji_for("question", {}) == "❓"
    assert emoji_for("comment", {}) is None
    assert emoji_for("question", {"question": "none"}) is None
    assert emoji_for("question", {"question": "🙋"}) == "🙋"
    assert emoji_for("unknown_label", {}) is None


def test_confident_labels_single_and_multi_label():
    scripted = ScriptedBatcher(("question", "bug_report", "spam"), {"question": 0.5})
    prediction = scripted.predict("[question 0.6] hi")
    assert confident_labels(prediction, {}, {"question": 0.5}, multi_label=False) == ["question"]
    assert confident_labels(prediction, {"question": 0.7}, {"question": 0.5}, multi_label=False) == []
    multi = prediction.__class__(
        label="bug_report", confidence=0.8, scores={"question": 0.6, "bug_report": 0.8, "spam": 0.1},
        uncertain=False, model_version="m", labels=("bug_report", "question"),
    )
    assert confident_labels(multi, {}, {}, multi_label=True) == ["bug_report", "question"]
    assert confident_labels(multi, {"question": 0.9}, {}, multi_label=True) == ["bug_report"]


def test_excerpt_is_short_and_inert():
    text = "@everyone buy **now** " + "x" * 500
    short = excerpt(text)
    assert len(short) <= 210 and short.endswith("…")
    assert "@everyone" not in short
    assert "**" not in short


async def test_is_forum_starter_only_for_the_opening_message(sim, scripted):
    thread, starter = await forum_post(sim.env, sim.guild, sim.forum, sim.alice, "t", "[comment 0.9] hi")
    reply = await sim.send(sim.bob, thread, "[comment 0.9] hello")
    cached_starter = next(e.message for e in sim.events if e.message.id == starter.id)
    cached_reply = next(e.message for e in sim.events if e.message.id == reply.id)
    assert is_forum_starter(cached_starter)
    assert not is_forum_starter(cached_reply)
