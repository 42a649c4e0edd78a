"""`/classify`, the "Classify" and "Correct label" message commands, through simcord."""

from __future__ import annotations

import pytest
from simcord import SetupError
from sqlalchemy import select

from bot.db.models import Feedback
from bot.permissions import MODERATOR_REFUSAL
from tests.bot._features_helpers import allow_command_for, install_scripted

MESSAGE_MENU = 3


@pytest.fixture
def scripted(sim):
    return install_scripted(sim.bot)


async def _feedback_rows(sim) -> list[Feedback]:
    async with sim.bot.sessionmaker() as session:
        return list(await session.scalars(select(Feedback).order_by(Feedback.id)))


async def test_classify_answers_privately_with_label_and_probabilities(sim, scripted):
    result = await sim.alice.slash(sim.general, "classify", text="[bug_report 0.82] pip crashes on install")
    assert result.ephemeral
    answer = result.response
    assert answer.ephemeral
    assert answer.content.startswith("**bug_report** (82%)")
    for label in sim.bot.classifier.labels:
        assert label in answer.content
    assert "scripted-1" in answer.content
    assert scripted.texts == ["[bug_report 0.82] pip crashes on install"]
    assert sim.general.last_message is None or "pip crashes" not in (sim.general.last_message.content or "")


async def test_classify_runs_the_real_model_too(sim):
    result = await sim.alice.slash(sim.general, "classify", text="anyone know why pip hangs?")
    answer = result.response
    first_line = answer.content.splitlines()[0]
    assert any(first_line.startswith(f"**{label}**") for label in sim.bot.classifier.labels)


async def test_classify_marks_uncertain_predictions(sim, scripted):
    result = await sim.alice.slash(sim.general, "classify", text="[question 0.1] hmm")
    assert "uncertain" in result.response.content.splitlines()[0]


async def test_classify_message_menu_is_open_to_anyone(sim, scripted):
    message = await sim.send(sim.bob, sim.general, "[spam 0.99] cheap followers here")
    result = await sim.alice.context_menu(sim.general, "Classify", message)
    assert result.ephemeral
    assert result.response.content.startswith("**spam** (99%)")


async def test_classify_message_menu_refuses_a_message_without_text(sim, scripted):
    message = await sim.send(sim.bob, sim.general, "", attachments=[("cat.png", b"\x89PNG....")])
    result = await sim.alice.context_menu(sim.general, "Classify", message)
    assert result.ephemeral
    assert "no text" in result.response.content


async def test_correct_label_records_a_correction_without_text(sim, scripted):
    message = await sim.send(sim.alice, sim.general, "[question 0.8] this is actually a bug: pip segfaults")
    result = await sim.mod.context_menu(sim.general, "Correct label", message)
    assert result.ephemeral
    picker = result.response
    assert "**question** (80%)" in picker.content
    chosen = await sim.mod.select(picker, ["bug_report"])
    assert "bug_report" in chosen.response.content

    (row,) = await _feedback_rows(sim)
    assert (row.message_id, row.channel_id, row.guild_id) == (message.id, sim.general.id, sim.guild.id)
    assert (row.moderator_id, row.source) == (sim.mod.id, "context_menu")
    assert (row.predicted_label, row.correct_label, row.verdict) == ("question", "bug_report", "corrected")
    # Only ids and labels: no column holds any of the message's words.
    values = [str(getattr(row, column.key)) for column in Feedback.__table__.columns]
    assert not any("segfault" in value for value in values)


async def test_correct_label_confirming_the_prediction_is_a_correct_verdict(sim, scripted):
    message = await sim.send(sim.alice, sim.general, "[question 0.8] how do I pin a version?")
    result = await sim.mod.context_menu(sim.general, "Correct label", message)
    await sim.mod.select(result.response, ["question"])
    (row,) = await _feedback_rows(sim)
    assert (row.verdict, row.correct_label) == ("correct", None)

    # Judging again replaces this moderator's verdict instead of adding a second row.
    result = await sim.mod.context_menu(sim.general, "Correct label", message)
    await sim.mod.select(result.response, ["comment"])
    (row,) = await _feedback_rows(sim)
    assert (row.verdict, row.correct_label) == ("corrected", "comment")


async def test_correct_label_is_hidden_from_and_refused_to_non_moderators(sim, scripted):
    message = await sim.send(sim.bob, sim.general, "[spam 0.9] hi")
    with pytest.raises(SetupError, match="not visible"):
        await sim.alice.context_menu(sim.general, "Correct label", message)
    # An admin overrides the default permission for alice: the bot still refuses her.
    allow_command_for(sim.env, sim.guild, "Correct label", sim.alice, kind=MESSAGE_MENU)
    result = await sim.alice.context_menu(sim.general, "Correct label", message)
    assert result.ephemeral
    assert result.response.content == MODERATOR_REFUSAL
    assert await _feedback_rows(sim) == []


async def test_a_classifier_failure_gets_a_polite_answer(sim, scripted, monkeypatch, caplog):
    async def broken(text: str):
        raise RuntimeError("onnxruntime exploded")

    monkeypatch.setattr(scripted, "classify", broken)
    result = await sim.alice.slash(sim.general, "classify", text="hello?")
    assert result.ephemeral
    assert "couldn't classify" in result.response.content
    assert "onnxruntime exploded" in caplog.text
