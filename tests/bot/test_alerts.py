"""Moderator alerts: posted with persistent ✓/✗ buttons that record feedback."""

from __future__ import annotations

import discord
import pytest
from sqlalchemy import select

from bot.db.models import Feedback, TagAction
from bot.permissions import MODERATOR_REFUSAL
from bot.views import JUDGEMENTS_FIELD
from tests.bot._features_helpers import install_scripted


@pytest.fixture
async def alerts(sim):
    """Scripted predictions and a moderators-only #mod-alerts channel receiving alerts."""
    install_scripted(sim.bot)
    channel = sim.guild.create_text_channel(
        "mod-alerts",
        overwrites={
            sim.guild.default_role: discord.PermissionOverwrite(view_channel=False),
            sim.mod: discord.PermissionOverwrite(view_channel=True),
            sim.guild.me: discord.PermissionOverwrite(view_channel=True),
        },
    )
    await sim.settle()
    await sim.bot.guild_configs.update(sim.guild.id, alert_channel_id=channel.id)
    return channel


def _alert_messages(channel) -> list[discord.Message]:
    return [m for m in channel.history() if m.embeds]


async def _rows(sim, model):
    async with sim.bot.sessionmaker() as session:
        return list(await session.scalars(select(model).order_by(model.id)))


async def test_spam_over_threshold_is_posted_to_the_alert_channel(sim, alerts):
    flagged = await sim.send(sim.alice, sim.general, "[spam 0.97] @everyone free nitro at example.com")
    await sim.send(sim.alice, sim.general, "[comment 0.99] hello all")
    await sim.send(sim.alice, sim.general, "[toxic 0.2] you are all wrong")  # below threshold
    await sim.env.advance_time(1)

    (alert,) = _alert_messages(alerts)
    embed = alert.embeds[0]
    fields = {field.name: field.value for field in embed.fields}
    assert embed.title == "Possible spam"
    assert fields["Label"] == "spam"
    assert fields["Confidence"] == "97%"
    assert fields["Channel"] == sim.general.mention
    assert fields["Author"] == sim.alice.mention
    assert f"https://discord.com/channels/{sim.guild.id}/{sim.general.id}/{flagged.id}" in fields["Message"]
    # A short excerpt for moderators, made inert; nobody gets pinged.
    assert "free nitro" in embed.description and "@everyone" not in embed.description
    assert not alert.mention_everyone and not alert.mentions
    buttons = [child for row in alert.components for child in row.children]
    assert [b.label for b in buttons] == ["✓ Correct", "✗ Wrong"]
    assert buttons[0].custom_id == f"cl:alert:ok:{sim.general.id}:{flagged.id}:spam"

    (action,) = await _rows(sim, TagAction)
    assert (action.action, action.label, action.message_id, action.applied) == ("alert", "spam", flagged.id, True)


async def test_alert_buttons_record_feedback_and_show_who_judged(sim, alerts):
    await sim.send(sim.alice, sim.general, "[toxic 0.9] you idiot")
    await sim.env.advance_time(1)
    (alert,) = _alert_messages(alerts)

    result = await sim.mod.click(alert, label="✓ Correct")
    assert result.acknowledged
    (row,) = await _rows(sim, Feedback)
    assert (row.verdict, row.source, row.predicted_label, row.moderator_id) == ("correct", "alert", "toxic", sim.mod.id)
    edited = _alert_messages(alerts)[0]
    verdicts = next(f.value for f in edited.embeds[0].fields if f.name == JUDGEMENTS_FIELD)
    assert verdicts == f"✓ correct — {sim.mod.mention}"
    assert [child.label for row in edited.components for child in row.children] == ["✓ Correct", "✗ Wrong"]

    # The same moderator changes their mind: one row, updated; the alert shows the new verdict.
    await sim.mod.click(edited, label="✗ Wrong")
    (row,) = await _rows(sim, Feedback)
    assert row.verdict == "wrong"
    verdicts = next(f.value for f in _alert_messages(alerts)[0].embeds[0].fields if f.name == JUDGEMENTS_FIELD)
    assert verdicts == f"✗ wrong — {sim.mod.mention}"


async def test_non_moderators_cannot_judge(sim, alerts):
    # Make the alert channel visible to alice, who lacks Manage Messages.
    sim.env.backend.get_channel(alerts.id).overwrites = []
    await sim.send(sim.bob, sim.general, "[spam 0.9] buy now")
    await sim.env.advance_time(1)
    (alert,) = _alert_messages(alerts)
    result = await sim.alice.click(alert, label="✓ Correct")
    assert result.ephemeral
    assert result.response.content == MODERATOR_REFUSAL
    assert await _rows(sim, Feedback) == []


async def test_buttons_still_work_after_a_restart(sim, alerts):
    await sim.send(sim.bob, sim.general, "[spam 0.9] buy now")
    await sim.env.advance_time(1)
    (alert,) = _alert_messages(alerts)
    await sim.restart()
    install_scripted(sim.bot)
    await sim.mod.click(alert, label="✗ Wrong")
    (row,) = await _rows(sim, Feedback)
    assert (row.verdict, row.source) == ("wrong", "alert")


async def test_editing_spam_into_a_message_alerts_once(sim, alerts):
    message = await sim.send(sim.alice, sim.general, "[comment 0.9] hi")
    await sim.alice.edit(message, "[spam 0.95] now with links")
    await sim.alice.edit(message, "[spam 0.96] more links")
    await sim.env.advance_time(1)
    assert len(_alert_messages(alerts)) == 1
    # Also across a restart (the in-memory memory is gone; the tag_actions row remains).
    await sim.restart()
    install_scripted(sim.bot)
    await sim.alice.edit(message, "[spam 0.97] even more links")
    await sim.env.advance_time(1)
    assert len(_alert_messages(alerts)) == 1


async def test_alert_labels_are_configurable(sim, alerts):
    await sim.bot.guild_configs.update(sim.guild.id, alert_labels=["question"])
    await sim.send(sim.alice, sim.general, "[spam 0.99] spam")
    await sim.send(sim.alice, sim.general, "[question 0.9] question?")
    await sim.env.advance_time(1)
    (alert,) = _alert_messages(alerts)
    assert alert.embeds[0].title == "Possible question"


async def test_no_alert_channel_means_no_alerts(sim):
    install_scripted(sim.bot)
    await sim.send(sim.alice, sim.general, "[spam 0.99] spam")
    await sim.env.advance_time(1)
    assert await _rows(sim, TagAction) == []
    assert not [r for r in sim.env.http_requests if r.method == "POST" and "/messages" in r.path]
