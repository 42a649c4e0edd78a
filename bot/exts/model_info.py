"""`/model info`: which model runs, its labels and thresholds, its test metrics (from
`classifier.json`), and live precision per label from this server's moderator feedback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.exts.tagging import effective_threshold
from bot.feedback import LabelPrecision, live_precision
from bot.permissions import ensure_guild

if TYPE_CHECKING:
    from bot.app import ChatLabelBot

# Scalar test metrics worth a line, in this order, when the model card has them.
HEADLINE_METRICS = ("n", "accuracy", "macro_f1", "weighted_f1", "macro_roc_auc", "hamming_accuracy", "ece")


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def headline_metrics(metrics: Mapping[str, Any]) -> str:
    parts = [f"{name} {_number(metrics[name])}" for name in HEADLINE_METRICS if name in metrics]
    return " · ".join(parts) if parts else "no test metrics in the model directory"


def label_table(
    labels: tuple[str, ...],
    metrics: Mapping[str, Any],
    precision: Mapping[str, LabelPrecision],
    thresholds: Mapping[str, float],
) -> str:
    """One row per label: threshold, test P/R/F1, live precision (judged count)."""
    per_label = metrics.get("per_label") if isinstance(metrics.get("per_label"), Mapping) else {}
    width = max((len(label) for label in labels), default=5)
    rows = [f"{'label':<{width}}  thr   test P  R     F1    live P (n)"]
    for label in labels:
        test = per_label.get(label) if isinstance(per_label, Mapping) else None
        if isinstance(test, Mapping):
            p, r, f = (test.get(key) for key in ("precision", "recall", "f1"))
            test_text = "  ".join(f"{v:.2f}" if isinstance(v, int | float) else " -- " for v in (p, r, f))
        else:
            test_text = " --    --    -- "
        live = precision.get(label)
        live_text = f"{live.precision:.0%} ({live.judged})" if live and live.precision is not None else "-"
        rows.append(f"{label:<{width}}  {thresholds[label]:.2f}  {test_text}  {live_text}")
    return "```\n" + "\n".join(rows) + "\n```"


class ModelInfo(commands.Cog):
    model = app_commands.Group(name="model", description="About the classification model.", guild_only=True)

    def __init__(self, bot: ChatLabelBot) -> None:
        self.bot = bot

    @model.command(name="info", description="Model version, labels, test metrics and live precision.")
    async def info(self, interaction: discord.Interaction) -> None:
        if not await ensure_guild(interaction):
            return
        assert interaction.guild_id is not None
        model = self.bot.classifier
        config = await self.bot.guild_configs.get(interaction.guild_id)
        async with self.bot.sessionmaker() as session:
            precision = await live_precision(session, interaction.guild_id)
        labels = tuple(model.labels)
        thresholds = {
            label: effective_threshold(label, config.thresholds, model.thresholds) for label in labels
        }
        metrics = model.metrics or {}
        embed = discord.Embed(title=f"Model {model.version}")
        embed.add_field(name="Type", value="multi-label" if model.multi_label else "single-label")
        embed.add_field(name="Labels", value=str(len(labels)))
        embed.add_field(name="Test metrics", value=headline_metrics(metrics), inline=False)
        embed.add_field(
            name="Per label (thr = threshold in this server; live P = moderator feedback)",
            value=label_table(labels, metrics, precision, thresholds)[:1024],
            inline=False,
        )
        overridden = sorted(set(config.thresholds) & set(labels))
        if overridden:
            embed.set_footer(text=f"server threshold overrides: {', '.join(overridden)}")
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: ChatLabelBot) -> None:
    await bot.add_cog(ModelInfo(bot))
