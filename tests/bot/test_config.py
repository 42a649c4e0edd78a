"""`/config ...` through simcord, and the threshold suggestion rule behind `thresholds auto`."""

from __future__ import annotations

import pytest
from simcord import SetupError
from sqlalchemy import select

from bot.db.models import GuildSettings
from bot.feedback import record_feedback, suggest_threshold
from bot.permissions import ADMIN_REFUSAL
from tests.bot._features_helpers import allow_command_for, install_scripted


@pytest.fixture
def scripted(sim):
    return install_scripted(sim.bot)


async def _stored(sim) -> GuildSettings | None:
    async with sim.bot.sessionmaker() as session:
        return await session.scalar(select(GuildSettings).where(GuildSettings.guild_id == sim.guild.id))


async def test_config_summary_saves_channel_schedule_and_timezone(sim):
    result = await sim.mod.slash(
        sim.general, "config summary", channel=sim.random, weekday=2, hour=18, timezone="Europe/Berlin", unanswered_hours=12
    )
    assert result.ephemeral
    assert "Wednesday at 18:00 Europe/Berlin" in result.response.content
    row = await _stored(sim)
    assert (row.summary_channel_id, row.summary_weekday, row.summary_hour, row.timezone, row.unanswered_after_hours) == (
        sim.random.id, 2, 18, "Europe/Berlin", 12,
    )
    # The cache was refreshed by the write, not left stale.
    assert (await sim.bot.guild_configs.get(sim.guild.id)).timezone == "Europe/Berlin"


async def test_config_summary_rejects_unknown_time_zones_clearly(sim):
    for bad in ("Mars/Olympus_Mons", "../../etc/passwd", "Europe/"):
        result = await sim.mod.slash(sim.general, "config summary", timezone=bad)
        assert result.ephemeral
        assert "is not a time zone I know" in result.response.content
        assert "Europe/Berlin" in result.response.content
    assert await _stored(sim) is None  # nothing was written


async def test_timezone_autocomplete_offers_iana_names(sim):
    choices = await sim.mod.autocomplete(sim.general, "config summary", "timezone", "berl")
    assert [choice["value"] for choice in choices] == ["Europe/Berlin"]


async def test_config_tagging_and_ignore(sim):
    result = await sim.mod.slash(sim.general, "config tagging", channel=sim.general, mode="react")
    assert "**react**" in result.response.content
    await sim.mod.slash(sim.general, "config tagging", channel=sim.forum, mode="forum")
    await sim.mod.slash(sim.general, "config ignore", channel=sim.random)
    config = await sim.bot.guild_configs.get(sim.guild.id)
    assert config.tagging_mode(sim.general.id) == "react"
    assert config.tagging_mode(sim.thread.id, sim.general.id) == "react"  # threads follow the parent
    assert config.tagging_mode(sim.forum.id) == "forum"
    assert config.is_ignored(sim.random.id)
    await sim.mod.slash(sim.general, "config ignore", channel=sim.random, ignored=False)
    assert not (await sim.bot.guild_configs.get(sim.guild.id)).is_ignored(sim.random.id)


async def test_ignored_channels_are_not_classified(sim, scripted):
    await sim.mod.slash(sim.general, "config ignore", channel=sim.random)
    kept = await sim.send(sim.alice, sim.general, "[question 0.9] how?")
    dropped = await sim.send(sim.alice, sim.random, "[question 0.9] how?")
    assert await sim.row(kept.id) is not None
    assert await sim.row(dropped.id) is None


async def test_config_alerts_validates_labels(sim):
    result = await sim.mod.slash(sim.general, "config alerts", channel=sim.random, labels="spam, toxic, question")
    assert "spam, toxic, question" in result.response.content
    config = await sim.bot.guild_configs.get(sim.guild.id)
    assert (config.alert_channel_id, config.alert_labels) == (sim.random.id, ("spam", "toxic", "question"))
    bad = await sim.mod.slash(sim.general, "config alerts", labels="spam, nonsense")
    assert "Unknown label(s): nonsense" in bad.response.content
    assert (await sim.bot.guild_configs.get(sim.guild.id)).alert_labels == ("spam", "toxic", "question")
    await sim.mod.slash(sim.general, "config alerts", disable=True)
    assert (await sim.bot.guild_configs.get(sim.guild.id)).alert_channel_id is None


async def test_config_retention_and_emoji(sim):
    await sim.mod.slash(sim.general, "config retention", days=30)
    await sim.mod.slash(sim.general, "config emoji", label="question", emoji="🙋")
    await sim.mod.slash(sim.general, "config emoji", label="spam", emoji="none")
    config = await sim.bot.guild_configs.get(sim.guild.id)
    assert config.retention_days == 30
    assert dict(config.emoji_map) == {"question": "🙋", "spam": "none"}
    await sim.mod.slash(sim.general, "config emoji", label="question", emoji="default")
    assert dict((await sim.bot.guild_configs.get(sim.guild.id)).emoji_map) == {"spam": "none"}
    bad = await sim.mod.slash(sim.general, "config emoji", label="nope", emoji="🙋")
    assert "Unknown label" in bad.response.content


async def test_config_thresholds_set_and_clear(sim):
    await sim.mod.slash(sim.general, "config thresholds set", label="spam", value=0.8)
    await sim.mod.slash(sim.general, "config thresholds set", label="toxic", value=0.7)
    assert dict((await sim.bot.guild_configs.get(sim.guild.id)).thresholds) == {"spam": 0.8, "toxic": 0.7}
    await sim.mod.slash(sim.general, "config thresholds clear", label="spam")
    assert dict((await sim.bot.guild_configs.get(sim.guild.id)).thresholds) == {"toxic": 0.7}
    await sim.mod.slash(sim.general, "config thresholds clear", label="all")
    assert dict((await sim.bot.guild_configs.get(sim.guild.id)).thresholds) == {}
    bad = await sim.mod.slash(sim.general, "config thresholds set", label="nope", value=0.5)
    assert "Unknown label" in bad.response.content


async def test_config_show_prints_everything(sim):
    await sim.mod.slash(sim.general, "config summary", channel=sim.random, timezone="Asia/Tokyo")
    await sim.mod.slash(sim.general, "config tagging", channel=sim.general, mode="shadow")
    await sim.mod.slash(sim.general, "config thresholds set", label="spam", value=0.8)
    result = await sim.mod.slash(sim.general, "config show")
    text = result.response.content
    assert result.ephemeral
    assert f"channel: {sim.random.mention}" in text
    assert "Monday 09:00 (Asia/Tokyo)" in text
    assert f"{sim.general.mention} shadow" in text
    assert "`spam`: 0.80 (server) · 🚫" in text
    assert "`comment`: " in text and "no reaction" in text
    assert "Retention**: 90 days" in text


async def test_thresholds_auto_suggests_and_applies_from_feedback(sim, scripted):
    # Ten judged spam alerts: right at 0.9+ confidence, wrong below.
    messages = []
    for i, (confidence, right) in enumerate([(0.95, True)] * 6 + [(0.91, True)] * 2 + [(0.5, False)] * 2):
        message = await sim.send(sim.alice, sim.general, f"[spam {confidence}] msg {i}")
        messages.append(message)
        await record_feedback(
            sim.bot.sessionmaker, guild_id=sim.guild.id, channel_id=sim.general.id, message_id=message.id,
            moderator_id=sim.mod.id, predicted_label="spam", verdict="correct" if right else "wrong", source="alert",
        )
    await sim.flush()
    dry = await sim.mod.slash(sim.general, "config thresholds auto")
    assert "`spam` (10 judged)" in dry.response.content
    assert "→ **0.910**" in dry.response.content
    assert "apply: True" in dry.response.content
    assert dict((await sim.bot.guild_configs.get(sim.guild.id)).thresholds) == {}

    applied = await sim.mod.slash(sim.general, "config thresholds auto", apply=True)
    assert "Applied to: spam" in applied.response.content
    assert dict((await sim.bot.guild_configs.get(sim.guild.id)).thresholds) == {"spam": pytest.approx(0.91)}


async def test_thresholds_auto_without_feedback_says_so(sim):
    result = await sim.mod.slash(sim.general, "config thresholds auto")
    assert "No moderator feedback yet" in result.response.content


async def test_config_is_hidden_from_and_refused_to_non_admins(sim):
    with pytest.raises(SetupError, match="not visible"):
        await sim.alice.slash(sim.general, "config show")
    allow_command_for(sim.env, sim.guild, "config", sim.alice)
    for name, options in [
        ("config show", {}),
        ("config summary", {"hour": 3}),
        ("config tagging", {"channel": sim.general, "mode": "react"}),
        ("config ignore", {"channel": sim.general}),
        ("config alerts", {"labels": "spam"}),
        ("config retention", {"days": 1}),
        ("config emoji", {"label": "spam", "emoji": "🙂"}),
        ("config thresholds set", {"label": "spam", "value": 0.1}),
        ("config thresholds clear", {"label": "all"}),
        ("config thresholds auto", {"apply": True}),
    ]:
        result = await sim.alice.slash(sim.general, name, **options)
        assert result.ephemeral, name
        assert result.response.content == ADMIN_REFUSAL, name
    assert await _stored(sim) is None
    assert (await sim.bot.guild_configs.get(sim.guild.id)).channels == {}


# ------------------------------------------------------------------ the suggestion rule


def test_suggestion_raises_a_threshold_that_lets_mistakes_through():
    samples = [(0.95, True)] * 8 + [(0.6, False), (0.55, False)]
    s = suggest_threshold("spam", samples, current=0.5, target=0.9, min_samples=10)
    assert s.suggested == pytest.approx(0.95)
    assert (s.precision_at_current, s.precision_at_suggested, s.kept_at_suggested) == (0.8, 1.0, 8)
    assert s.changes


def test_suggestion_lowers_a_threshold_when_lower_confidences_were_right():
    samples = [(0.55, True), (0.6, True), (0.7, True)] + [(0.9, True)] * 7
    s = suggest_threshold("question", samples, current=0.8, target=0.9, min_samples=10)
    assert s.suggested == pytest.approx(0.55)


def test_suggestion_keeps_a_lower_current_threshold_without_evidence_against_it():
    s = suggest_threshold("question", [(0.9, True)] * 10, current=0.3, target=0.9, min_samples=10)
    assert s.suggested == pytest.approx(0.3) and not s.changes


def test_suggestion_needs_enough_samples_and_a_reachable_target():
    few = suggest_threshold("spam", [(0.9, True)] * 3, current=0.5, min_samples=10)
    assert few.suggested is None and "needs 10" in few.note
    hopeless = suggest_threshold("spam", [(0.99, False)] * 10 + [(0.5, True)], current=0.5, min_samples=10)
    assert hopeless.suggested is None and "no threshold reaches" in hopeless.note
    with pytest.raises(ValueError):
        suggest_threshold("spam", [], current=0.5, target=0)
