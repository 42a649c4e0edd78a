"""Weekly summary posting: exactly once per guild and week, catch-up on start-up, commands."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from simcord import SetupError
from sqlalchemy import select

import bot.summary as summary_module
from bot.db.models import SummaryPosted
from bot.permissions import ADMIN_REFUSAL
from bot.summary import next_due, week_covered_by
from tests.bot._features_helpers import allow_command_for, install_scripted


def _monday_9(after: datetime) -> datetime:
    """The first Monday 09:00 UTC strictly after `after`."""
    return next_due(after, 0, 9, "UTC")


@pytest.fixture
async def weekly(sim, monkeypatch):
    """#weekly receives summaries on Monday 09:00 UTC; returns (channel, config, set_now)."""
    install_scripted(sim.bot)
    channel = sim.guild.create_text_channel("weekly")
    await sim.settle()
    config = await sim.bot.guild_configs.update(
        sim.guild.id, summary_channel_id=channel.id, summary_weekday=0, summary_hour=9, timezone="UTC"
    )

    def set_now(when: datetime) -> None:
        monkeypatch.setattr(summary_module, "current_time", lambda: when)

    return channel, config, set_now


def _summaries_in(channel) -> list:
    return [m for m in channel.history() if m.embeds and "summary" in (m.embeds[0].footer.text or "")]


async def _claims(sim) -> list[SummaryPosted]:
    async with sim.bot.sessionmaker() as session:
        return list(await session.scalars(select(SummaryPosted)))


def _cog(sim):
    return sim.bot.get_cog("Summaries")


async def test_a_due_summary_is_posted_exactly_once_across_restarts(sim, weekly):
    channel, config, set_now = weekly
    due = _monday_9(config.updated_at)
    set_now(due + timedelta(hours=1))
    week = week_covered_by(due)

    assert await _cog(sim).sweep() == 1
    assert await _cog(sim).sweep() == 0
    # Two runs racing for the same week: neither posts again.
    assert await asyncio.gather(_cog(sim).post_due(sim.guild.id), _cog(sim).post_due(sim.guild.id)) == [False, False]
    (posted,) = _summaries_in(channel)
    assert posted.embeds[0].footer.text == f"chatlabel summary {sim.guild.id}:{week.isoformat()}"
    assert posted.embeds[0].description.startswith("**Weekly summary**")
    assert [a.filename for a in posted.attachments] == ["summary.png"]
    (claim,) = await _claims(sim)
    assert (claim.week_start, claim.message_id, claim.channel_id) == (week, posted.id, channel.id)

    await sim.restart()  # the new bot sweeps on start-up: nothing new to post
    assert await _cog(sim).sweep() == 0
    assert len(_summaries_in(channel)) == 1


async def test_a_summary_missed_while_down_is_posted_on_start_up(sim, weekly):
    channel, config, set_now = weekly
    set_now(config.updated_at + timedelta(minutes=5))
    assert await _cog(sim).sweep() == 0  # configured after last Monday 09:00: nothing due yet
    assert await _claims(sim) == []

    due = _monday_9(config.updated_at)
    set_now(due + timedelta(days=2))  # the bot was down over Monday
    await sim.restart()
    (posted,) = _summaries_in(channel)
    assert str(week_covered_by(due)) in posted.embeds[0].footer.text
    (claim,) = await _claims(sim)
    assert claim.message_id == posted.id


async def test_only_the_last_due_week_is_caught_up(sim, weekly):
    channel, config, set_now = weekly
    first_due = _monday_9(config.updated_at)
    set_now(first_due + timedelta(days=15))  # three Mondays missed
    await sim.restart()
    (posted,) = _summaries_in(channel)
    assert str(week_covered_by(first_due + timedelta(days=14))) in posted.embeds[0].footer.text


async def test_a_claim_left_by_a_crash_before_posting_is_posted(sim, weekly):
    channel, config, set_now = weekly
    due = _monday_9(config.updated_at)
    set_now(due + timedelta(hours=1))
    week = week_covered_by(due)
    async with sim.bot.sessionmaker.begin() as session:  # claimed, then the process died
        session.add(SummaryPosted(guild_id=sim.guild.id, week_start=week, posted_at=due, channel_id=channel.id))
    await sim.restart()
    (posted,) = _summaries_in(channel)
    (claim,) = await _claims(sim)
    assert claim.message_id == posted.id


async def test_a_claim_whose_post_went_out_is_completed_not_reposted(sim, weekly):
    channel, config, set_now = weekly
    due = _monday_9(config.updated_at)
    set_now(due + timedelta(hours=1))
    week = week_covered_by(due)
    async with sim.bot.sessionmaker.begin() as session:
        session.add(SummaryPosted(guild_id=sim.guild.id, week_start=week, posted_at=due, channel_id=channel.id))
    # The post reached Discord but the process died before recording its id.
    sent = sim.env.backend.create_message(
        channel.id,
        sim.bot.user.id,
        embeds=[{"description": "**Weekly summary** …", "footer": {"text": f"chatlabel summary {sim.guild.id}:{week}"}}],
    )
    await sim.restart()
    assert [m.id for m in _summaries_in(channel)] == [sent.id]
    (claim,) = await _claims(sim)
    assert claim.message_id == sent.id


async def test_a_failed_post_releases_its_claim_for_a_retry(sim, weekly, caplog):
    channel, config, set_now = weekly
    set_now(_monday_9(config.updated_at) + timedelta(hours=1))
    sim.env.inject_error("POST", f"/channels/{channel.id}/messages", status=500, times=1)
    assert await _cog(sim).sweep() == 0
    assert await _claims(sim) == []
    assert "weekly summary for guild" in caplog.text  # logged with its traceback
    # The next sweep (hourly, or the guild's cron job) succeeds.
    assert await _cog(sim).sweep() == 1
    assert len(_summaries_in(channel)) == 1


async def test_the_cron_job_follows_the_settings(sim):
    install_scripted(sim.bot)
    result = await sim.mod.slash(
        sim.general, "config summary", channel=sim.random, weekday=4, hour=17, timezone="Asia/Tokyo"
    )
    assert result.ephemeral and "Friday at 17:00 Asia/Tokyo" in result.response.content
    expected = next_due(datetime.now(UTC), 4, 17, "Asia/Tokyo")
    assert _cog(sim).next_run(sim.guild.id) == expected
    await sim.mod.slash(sim.general, "config summary", disable=True)
    assert _cog(sim).next_run(sim.guild.id) is None


# ------------------------------------------------------------------ commands


async def test_summary_preview_shows_this_week_so_far(sim, weekly):
    await sim.send(sim.alice, sim.general, "[question 0.9] how do I pin numpy?")
    await sim.send(sim.bob, sim.general, "[bug_report 0.9] pip segfaults")
    await sim.send(sim.bob, sim.general, "[comment 0.9] thanks")
    result = await sim.mod.slash(sim.general, "summary preview")
    assert result.ephemeral
    preview = result.response
    assert "Next scheduled summary" in preview.content
    description = preview.embeds[0].description
    assert "**Messages:** 3" in description
    assert "- question: 1 (new)" in description
    assert [a.filename for a in preview.attachments] == ["summary.png"]
    # Nothing was posted or recorded.
    assert _summaries_in(weekly[0]) == []
    assert await _claims(sim) == []

    last = await sim.mod.slash(sim.general, "summary preview", week="last")
    assert "**Messages:** 0" in last.response.embeds[0].description


async def test_summary_post_posts_now_and_records_the_week(sim, weekly):
    channel, _, _ = weekly
    result = await sim.mod.slash(sim.general, "summary post")
    assert result.ephemeral
    (posted,) = _summaries_in(channel)
    assert posted.jump_url in result.response.content
    (claim,) = await _claims(sim)
    assert claim.message_id == posted.id
    # The scheduler will not post that week again.
    assert await _cog(sim).post_due(sim.guild.id) is False


async def test_summary_post_without_a_channel_explains_what_to_do(sim):
    result = await sim.mod.slash(sim.general, "summary post")
    assert result.ephemeral and "/config summary" in result.response.content


async def test_summary_commands_are_for_admins(sim, weekly):
    with pytest.raises(SetupError, match="not visible"):
        await sim.alice.slash(sim.general, "summary post")
    allow_command_for(sim.env, sim.guild, "summary", sim.alice)
    result = await sim.alice.slash(sim.general, "summary post")
    assert result.ephemeral and result.response.content == ADMIN_REFUSAL
    assert _summaries_in(weekly[0]) == []
    # Preview is harmless once an admin opened the command to someone.
    preview = await sim.alice.slash(sim.general, "summary preview")
    assert preview.ephemeral and preview.response.embeds


def test_week_covered_by_a_monday_post_is_the_previous_week():
    assert week_covered_by(datetime(2026, 3, 9, 9, tzinfo=UTC)) == date(2026, 3, 2)
