"""filter → classifier (micro-batched, off the event loop) → writer → `message_classified`.

Live messages, edits, backfill and replay all go through here so they obey the same rules:
skip bots, webhooks, system messages and empty messages; record attachment-only messages
without a label; skip ignored channels and users who opted out. Message text lives only in
`MessageFacts.text` on its way to the classifier; it is never written anywhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import discord
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import MessageRecord, PrivacyOptOut
from bot.db.writer import MessageMeta, MessageRow, MessageWriter
from bot.guild_config import GuildConfigCache

if TYPE_CHECKING:
    from bot.metrics import BotMetrics
    from classifier import MicroBatcher, Prediction

log = logging.getLogger(__name__)

# Only ordinary user messages carry text worth classifying; joins, pins, boosts, thread
# notices etc. are system messages.
CLASSIFIABLE_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})


@dataclass(frozen=True, slots=True)
class MessageFacts(MessageMeta):
    """What the pipeline needs about one message. `text` is transient: never stored."""

    text: str
    attachment_only: bool

    def to_row(self, prediction: Prediction | None, classified_at: datetime) -> MessageRow:
        return MessageRow(
            **self.meta(),
            label=prediction.label if prediction else None,
            confidence=float(prediction.confidence) if prediction else None,
            scores={k: float(v) for k, v in prediction.scores.items()} if prediction else None,
            uncertain=bool(prediction.uncertain) if prediction else False,
            model_version=prediction.model_version if prediction else None,
            attachment_only=self.attachment_only,
            classified_at=classified_at,
        )


def skip_reason(message: discord.Message) -> str | None:
    """Why a gateway message is not classified, or None when it should be."""
    if message.guild is None:
        return "dm"
    if message.webhook_id is not None:
        return "webhook"
    if message.author.bot or message.author.system:
        return "bot"
    if message.type not in CLASSIFIABLE_TYPES:
        return "system"
    if not message.content.strip() and not message.attachments:
        return "empty"
    return None


def facts_from_message(message: discord.Message) -> MessageFacts | None:
    """Filter + extract; None when the message is not ours to classify."""
    if skip_reason(message) is not None:
        return None
    assert message.guild is not None
    channel = message.channel
    parent_id = getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None
    reference = message.reference
    reply_to = None
    if message.type is discord.MessageType.reply and reference is not None:
        reply_to = reference.message_id
    text = message.content
    return MessageFacts(
        message_id=message.id,
        guild_id=message.guild.id,
        channel_id=channel.id,
        parent_id=parent_id,
        author_id=message.author.id,
        reply_to_id=reply_to,
        created_at=message.created_at,
        edited_at=message.edited_at,
        text=text,
        attachment_only=not text.strip() and bool(message.attachments),
    )


Dispatch = Callable[..., Any]


class Pipeline:
    """The one path from a message to a stored prediction."""

    def __init__(
        self,
        *,
        batcher: MicroBatcher,
        writer: MessageWriter,
        guild_configs: GuildConfigCache,
        sessionmaker: async_sessionmaker[AsyncSession],
        metrics: BotMetrics | None = None,
        dispatch: Dispatch | None = None,
        clock: Callable[[], datetime] = discord.utils.utcnow,
        guild_active: Callable[[int], bool] | None = None,
    ) -> None:
        self.batcher = batcher
        self.writer = writer
        self.guild_configs = guild_configs
        self.sessionmaker = sessionmaker
        self.metrics = metrics
        self.dispatch = dispatch
        self.clock = clock
        self.guild_active = guild_active
        self.optouts: set[int] = set()
        # channel id -> lowest message id stored live since the current gateway session
        # began; backfill only trusts the stored watermark below it.
        self._live_floor: dict[int, int] = {}

    # ------------------------------------------------------------- privacy / state
    async def load_optouts(self) -> None:
        async with self.sessionmaker() as session:
            self.optouts = set(await session.scalars(select(PrivacyOptOut.user_id)))

    def reset_live_floor(self) -> None:
        self._live_floor.clear()

    def live_floor(self, channel_id: int) -> int | None:
        return self._live_floor.get(channel_id)

    def _note_live(self, channel_id: int, message_id: int) -> None:
        floor = self._live_floor.get(channel_id)
        if floor is None or message_id < floor:
            self._live_floor[channel_id] = message_id

    def _skip(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.messages_skipped.labels(reason=reason).inc()

    def still_wanted(self, facts: MessageFacts) -> bool:
        """Last check before writing: forget-me or leaving the guild may have happened meanwhile."""
        if facts.author_id in self.optouts:
            return False
        return self.guild_active is None or self.guild_active(facts.guild_id)

    async def allowed(self, facts: MessageFacts) -> bool:
        """Consent and channel rules (checked before classifying and again before writing)."""
        if facts.author_id in self.optouts:
            self._skip("opted_out")
            return False
        config = await self.guild_configs.get(facts.guild_id)
        if config.is_ignored(facts.channel_id, facts.parent_id):
            self._skip("ignored")
            return False
        return True

    # ------------------------------------------------------------------ live path
    async def handle_live(
        self, message: discord.Message, *, is_edit: bool = False
    ) -> Prediction | None:
        """Classify + store one gateway message; dispatches `message_classified` afterwards."""
        reason = skip_reason(message)
        if reason is not None:
            self._skip(reason)
            return None
        facts = facts_from_message(message)
        assert facts is not None
        if not await self.allowed(facts):
            return None
        prediction = None
        if not facts.attachment_only:
            prediction = await self._classify_one(facts)
            if prediction is None:
                return None
        if not self.still_wanted(facts):
            return None
        await self.writer.upsert(facts.to_row(prediction, self.clock()))
        self._note_live(facts.channel_id, facts.message_id)
        self._count(prediction, "edit" if is_edit else "live")
        if prediction is not None and self.dispatch is not None:
            self.dispatch("message_classified", message, prediction, is_edit)
        return prediction

    async def _classify_one(self, facts: MessageFacts) -> Prediction | None:
        started = time.perf_counter()
        try:
            prediction = await self.batcher.classify(facts.text)
        except Exception:
            log.exception("classification failed for message %s", facts.message_id)
            if self.metrics is not None:
                self.metrics.classification_errors.inc()
            return None
        if self.metrics is not None:
            self.metrics.classification_latency.observe(time.perf_counter() - started)
        return prediction

    def _count(self, prediction: Prediction | None, source: str) -> None:
        if self.metrics is None:
            return
        if prediction is None:
            self.metrics.attachment_only.inc()
        else:
            self.metrics.messages_classified.labels(label=prediction.label, source=source).inc()

    # ------------------------------------------------------------------ bulk path
    async def process_bulk(
        self,
        items: Sequence[tuple[MessageFacts, Any]],
        *,
        source: str,
        event: str | None = "message_classified_backfill",
    ) -> int:
        """Classify many messages in one `classify_many`, write them, dispatch `event`.

        `items` pairs each message's facts with the object handed to listeners (a
        `discord.Message` for backfill, the export record for replay). Returns rows written.
        """
        kept = [(facts, obj) for facts, obj in items if await self.allowed(facts)]
        if not kept:
            return 0
        to_classify = [(facts, obj) for facts, obj in kept if not facts.attachment_only]
        predictions: dict[int, Prediction] = {}
        if to_classify:
            started = time.perf_counter()
            try:
                results = await self.batcher.classify_many([facts.text for facts, _ in to_classify])
            except Exception:
                log.exception("bulk classification of %d messages failed", len(to_classify))
                if self.metrics is not None:
                    self.metrics.classification_errors.inc(len(to_classify))
                results = None
            if results is not None:
                if self.metrics is not None:
                    elapsed = (time.perf_counter() - started) / max(1, len(results))
                    for _ in results:
                        self.metrics.classification_latency.observe(elapsed)
                for (facts, _), prediction in zip(to_classify, results, strict=True):
                    predictions[facts.message_id] = prediction
        now = self.clock()
        written: list[tuple[MessageFacts, Any, Prediction | None]] = []
        for facts, obj in kept:
            prediction = predictions.get(facts.message_id)
            if prediction is None and not facts.attachment_only:
                continue  # classification failed: logged above
            if not self.still_wanted(facts):
                continue
            written.append((facts, obj, prediction))
        if not written:
            return 0
        await self.writer.upsert([facts.to_row(pred, now) for facts, _, pred in written])
        for _facts, obj, prediction in written:
            self._count(prediction, source)
            if prediction is not None and event is not None and self.dispatch is not None:
                self.dispatch(event.removeprefix("on_"), obj, prediction)
        return len(written)

    # ------------------------------------------------------------------ lookups
    async def stored_edited_at(self, message_id: int) -> tuple[bool, datetime | None]:
        """(row exists, its edited_at) — used to decide whether an uncached edit is new."""
        async with self.sessionmaker() as session:
            row = (
                await session.execute(
                    select(MessageRecord.message_id, MessageRecord.edited_at).where(
                        MessageRecord.message_id == message_id
                    )
                )
            ).first()
        if row is None:
            return False, None
        return True, row.edited_at
