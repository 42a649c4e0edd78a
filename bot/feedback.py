"""Moderator feedback: recording verdicts, live precision per label, threshold suggestions.

Feedback rows hold ids and labels only (never text). A verdict is about the label the model
predicted for a message:
- "correct": the prediction was right (✓ on an alert, or "Correct label" picked the same label);
- "wrong": the prediction was wrong, true label unknown (✗ on an alert);
- "corrected": the prediction was wrong and a moderator picked the right label.

Live precision of label L = correct / judged, over feedback whose predicted label is L.
When a message got several verdicts (two moderators, or an alert and a context menu), the
most recent one counts, so one message is one sample.

Threshold suggestion (`/config thresholds auto`), simple and explainable:
for label L, take the judged messages predicted as L with the confidence stored for them;
the suggested threshold is the LOWEST confidence t such that the judged messages with
confidence >= t reach the target precision (default 90%). The tagger acts when the label
is predicted with confidence >= threshold, so this keeps as many correct actions as the
evidence allows. Feedback only covers what moderators saw (alerts fire above the threshold),
so the suggestion never goes below the lowest judged confidence, and when every judged
message already meets the target a lower current threshold is kept (no evidence against it).
Labels with fewer than `min_samples` judged messages get no suggestion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import discord
from sqlalchemy import func, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import FEEDBACK_SOURCES, FEEDBACK_VERDICTS, Feedback, MessageRecord

DEFAULT_TARGET_PRECISION = 0.9
DEFAULT_MIN_SAMPLES = 10


async def record_feedback(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    guild_id: int,
    channel_id: int,
    message_id: int,
    moderator_id: int,
    predicted_label: str | None,
    verdict: str,
    source: str,
    correct_label: str | None = None,
    now: datetime | None = None,
) -> None:
    """Insert or replace this moderator's verdict on this message from this source."""
    if verdict not in FEEDBACK_VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(FEEDBACK_VERDICTS)}")
    if source not in FEEDBACK_SOURCES:
        raise ValueError(f"source must be one of {', '.join(FEEDBACK_SOURCES)}")
    values = {
        "guild_id": guild_id,
        "channel_id": channel_id,
        "message_id": message_id,
        "moderator_id": moderator_id,
        "predicted_label": predicted_label,
        "correct_label": correct_label,
        "verdict": verdict,
        "source": source,
        "created_at": now or discord.utils.utcnow(),
    }
    statement = insert(Feedback).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[Feedback.message_id, Feedback.moderator_id, Feedback.source],
        set_={k: values[k] for k in ("predicted_label", "correct_label", "verdict", "created_at")},
    )
    async with sessionmaker.begin() as session:
        await session.execute(statement)


def verdict_for(predicted_label: str | None, chosen_label: str) -> str:
    """"Correct label" menu: picking the predicted label confirms it, anything else corrects it."""
    return "correct" if chosen_label == predicted_label else "corrected"


@dataclass(frozen=True)
class LabelPrecision:
    label: str
    judged: int
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.judged if self.judged else None


async def _latest_verdicts(session: AsyncSession, guild_id: int) -> list[tuple[int, str | None, str]]:
    """(message_id, predicted_label, verdict) — the newest verdict per message."""
    newest = (
        select(Feedback.message_id, func.max(Feedback.id).label("newest_id"))
        .where(Feedback.guild_id == guild_id)
        .group_by(Feedback.message_id)
        .subquery()
    )
    rows = await session.execute(
        select(Feedback.message_id, Feedback.predicted_label, Feedback.verdict).join(
            newest, Feedback.id == newest.c.newest_id
        )
    )
    return [(message_id, label, verdict) for message_id, label, verdict in rows]


async def live_precision(session: AsyncSession, guild_id: int) -> dict[str, LabelPrecision]:
    """Precision per predicted label from this guild's moderator feedback."""
    judged: dict[str, list[int]] = {}
    for _message_id, label, verdict in await _latest_verdicts(session, guild_id):
        if label is None:
            continue
        counts = judged.setdefault(label, [0, 0])
        counts[0] += 1
        counts[1] += verdict == "correct"
    return {label: LabelPrecision(label, n, ok) for label, (n, ok) in sorted(judged.items())}


async def feedback_samples(session: AsyncSession, guild_id: int) -> dict[str, list[tuple[float, bool]]]:
    """label -> [(stored confidence, prediction was right)] for judged messages still stored."""
    latest = await _latest_verdicts(session, guild_id)
    by_message = {message_id: (label, verdict) for message_id, label, verdict in latest if label}
    samples: dict[str, list[tuple[float, bool]]] = {}
    ids = list(by_message)
    for index in range(0, len(ids), 500):
        chunk = ids[index : index + 500]
        rows = await session.execute(
            select(MessageRecord.message_id, MessageRecord.label, MessageRecord.confidence).where(
                MessageRecord.message_id.in_(chunk)
            )
        )
        for message_id, stored_label, confidence in rows:
            label, verdict = by_message[message_id]
            # A message re-classified after an edit no longer carries the judged prediction.
            if stored_label != label or confidence is None:
                continue
            samples.setdefault(label, []).append((float(confidence), verdict == "correct"))
    return samples


@dataclass(frozen=True)
class ThresholdSuggestion:
    label: str
    samples: int
    current: float
    precision_at_current: float | None
    suggested: float | None
    precision_at_suggested: float | None
    kept_at_suggested: int
    note: str

    @property
    def changes(self) -> bool:
        return self.suggested is not None and abs(self.suggested - self.current) > 1e-9


def _precision_at(samples: Sequence[tuple[float, bool]], threshold: float) -> tuple[float | None, int]:
    kept = [ok for confidence, ok in samples if confidence >= threshold]
    return (sum(kept) / len(kept) if kept else None), len(kept)


def suggest_threshold(
    label: str,
    samples: Sequence[tuple[float, bool]],
    *,
    current: float,
    target: float = DEFAULT_TARGET_PRECISION,
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> ThresholdSuggestion:
    """The lowest threshold whose judged messages reach `target` precision (see module doc)."""
    if not 0.0 < target <= 1.0:
        raise ValueError("target precision must be in (0, 1]")
    at_current, _ = _precision_at(samples, current)
    if len(samples) < min_samples:
        return ThresholdSuggestion(
            label, len(samples), current, at_current, None, None, 0,
            f"needs {min_samples} judged messages, has {len(samples)}",
        )
    confidences = sorted({confidence for confidence, _ in samples})
    chosen = None
    for candidate in confidences:  # ascending: the first that qualifies is the lowest
        precision, _ = _precision_at(samples, candidate)
        if precision is not None and precision >= target:
            chosen = candidate
            break
    if chosen is None:
        return ThresholdSuggestion(
            label, len(samples), current, at_current, None, None, 0,
            f"no threshold reaches {target:.0%} precision; consider not alerting/tagging this label",
        )
    if chosen == confidences[0] and current < chosen:
        chosen = current  # every judged message meets the target: no evidence to raise it
        note = "all judged messages meet the target; keeping the current threshold"
    elif chosen > current:
        note = "raise: too many wrong predictions just above the current threshold"
    elif chosen < current:
        note = "lower: judged messages below the current threshold were right often enough"
    else:
        note = "the current threshold is already the best one"
    precision, kept = _precision_at(samples, chosen)
    return ThresholdSuggestion(label, len(samples), current, at_current, chosen, precision, kept, note)


def suggest_thresholds(
    samples: Mapping[str, Sequence[tuple[float, bool]]],
    current: Mapping[str, float],
    *,
    target: float = DEFAULT_TARGET_PRECISION,
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> list[ThresholdSuggestion]:
    """One suggestion per label that has any feedback, in label order."""
    return [
        suggest_threshold(
            label, samples[label], current=current.get(label, 0.5), target=target, min_samples=min_samples
        )
        for label in sorted(samples)
    ]
