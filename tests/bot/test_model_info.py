"""`/model info`: version, labels, test metrics and live precision per label."""

from __future__ import annotations

from bot.exts.model_info import headline_metrics, label_table
from bot.feedback import LabelPrecision, live_precision, record_feedback
from tests.bot._features_helpers import install_scripted


async def test_model_info_shows_the_running_model(sim):
    result = await sim.alice.slash(sim.general, "model info")
    assert result.ephemeral
    embed = result.response.embeds[0]
    fields = {field.name: field.value for field in embed.fields}
    model = sim.bot.classifier
    assert embed.title == f"Model {model.version}"
    assert fields["Type"] == "single-label"
    assert fields["Labels"] == str(len(model.labels))
    table = next(value for name, value in fields.items() if name.startswith("Per label"))
    for label in model.labels:
        assert f"\n{label} " in table


async def test_model_info_reports_live_precision_and_server_thresholds(sim):
    install_scripted(sim.bot)
    await sim.bot.guild_configs.update(sim.guild.id, thresholds={"spam": 0.85})
    for i, verdict in enumerate(["correct", "correct", "correct", "wrong"]):
        message = await sim.send(sim.alice, sim.general, f"[spam 0.9] buy {i}")
        await record_feedback(
            sim.bot.sessionmaker, guild_id=sim.guild.id, channel_id=sim.general.id, message_id=message.id,
            moderator_id=sim.mod.id, predicted_label="spam", verdict=verdict, source="alert",
        )
    result = await sim.alice.slash(sim.general, "model info")
    embed = result.response.embeds[0]
    table = next(field.value for field in embed.fields if field.name.startswith("Per label"))
    spam_row = next(line for line in table.splitlines() if line.startswith("spam "))
    assert "0.85" in spam_row and spam_row.endswith("75% (4)")
    assert "server threshold overrides: spam" in embed.footer.text


async def test_live_precision_counts_one_verdict_per_message(sim):
    install_scripted(sim.bot)
    message = await sim.send(sim.alice, sim.general, "[question 0.9] how?")
    for moderator, verdict, source in [(1, "wrong", "alert"), (2, "correct", "context_menu")]:
        await record_feedback(
            sim.bot.sessionmaker, guild_id=sim.guild.id, channel_id=sim.general.id, message_id=message.id,
            moderator_id=moderator, predicted_label="question", verdict=verdict, source=source,
        )
    async with sim.bot.sessionmaker() as session:
        precision = await live_precision(session, sim.guild.id)
        other_guild = await live_precision(session, sim.guild.id + 1)
    assert precision == {"question": LabelPrecision("question", judged=1, correct=1)}  # the newest verdict
    assert other_guild == {}


def test_test_metrics_from_the_model_card_are_shown():
    metrics = {
        "n": 700, "accuracy": 0.81234, "macro_f1": 0.7, "ignored": {"x": 1},
        "per_label": {"spam": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 100}},
    }
    assert headline_metrics(metrics) == "n 700 · accuracy 0.812 · macro_f1 0.700"
    assert headline_metrics({}) == "no test metrics in the model directory"
    table = label_table(("spam", "toxic"), metrics, {}, {"spam": 0.5, "toxic": 0.6})
    assert "spam   0.50  0.90  0.80  0.85  -" in table
    assert "toxic  0.60   --    --    --   -" in table
