"""`/stats [channel] [days]` through simcord: counts, label mix, uncertain share, chart."""

from __future__ import annotations

import io
from datetime import timedelta

import discord
import pytest
from PIL import Image

from bot.feedback import record_feedback
from tests.bot._features_helpers import install_scripted, message_row


@pytest.fixture
async def chatter(sim):
    install_scripted(sim.bot)
    sent = []
    for author, channel, text in [
        (sim.alice, sim.general, "[question 0.9] how do I pin numpy?"),
        (sim.bob, sim.general, "[answer 0.9] use ~="),
        (sim.alice, sim.thread, "[question 0.9] and in a thread?"),
        (sim.bob, sim.random, "[comment 0.9] lunch?"),
        (sim.bob, sim.random, "[spam 0.1] maybe spam"),  # uncertain
    ]:
        sent.append(await sim.send(author, channel, text))
    await sim.send(sim.alice, sim.general, "", attachments=[("log.txt", b"trace")])
    await sim.flush()
    return sent


def _fields(embed: discord.Embed) -> dict[str, str]:
    return {field.name: field.value for field in embed.fields}


async def test_stats_for_the_whole_server(sim, chatter):
    result = await sim.alice.slash(sim.general, "stats")
    assert result.ephemeral
    reply = result.response
    fields = _fields(reply.embeds[0])
    assert fields["Messages"] == "6"
    assert fields["Classified"] == "5"
    assert fields["Uncertain"] == "20%"
    assert fields["Attachment-only"] == "1"
    mix = fields["Label mix"]
    assert "`question` 2 (40%)" in mix
    assert "`answer` 1 (20%)" in mix
    assert "`uncertain` 1 (20%)" in mix
    assert "`spam`" not in mix
    (chart,) = reply.attachments
    assert chart.filename == "stats.png"
    png = await chart.read()
    assert Image.open(io.BytesIO(png)).format == "PNG"


async def test_stats_for_one_channel_include_its_threads(sim, chatter):
    result = await sim.alice.slash(sim.general, "stats", channel=sim.general, days=1)
    fields = _fields(result.response.embeds[0])
    assert result.response.embeds[0].title == "Stats for #general — last 1 day"
    assert fields["Messages"] == "4"  # 2 in #general, 1 in its thread, 1 attachment-only
    assert "`question` 2 (67%)" in fields["Label mix"]


async def test_stats_only_count_the_requested_days(sim, chatter):
    three_days_ago = sim.env.now() - timedelta(days=3)
    async with sim.bot.sessionmaker.begin() as session:
        session.add(message_row(guild_id=sim.guild.id, channel_id=sim.general.id, created_at=three_days_ago, label="suggestion"))
    recent = _fields((await sim.alice.slash(sim.general, "stats", days=2)).response.embeds[0])
    week = _fields((await sim.alice.slash(sim.general, "stats", days=7)).response.embeds[0])
    assert (recent["Messages"], week["Messages"]) == ("6", "7")
    assert "`suggestion`" not in recent["Label mix"]
    assert "`suggestion` 1" in week["Label mix"]


async def test_stats_show_live_precision_from_feedback(sim, chatter):
    question = chatter[0]
    await record_feedback(
        sim.bot.sessionmaker, guild_id=sim.guild.id, channel_id=sim.general.id, message_id=question.id,
        moderator_id=sim.mod.id, predicted_label="question", verdict="correct", source="context_menu",
    )
    result = await sim.alice.slash(sim.general, "stats")
    assert "precision 100% of 1 judged" in _fields(result.response.embeds[0])["Label mix"]
