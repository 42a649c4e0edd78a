"""The bot's tables (contract: docs/bot-internals.md). Ids, labels and scores only, never text.

Datetimes are timezone-aware in Python: `UTCDateTime` refuses naive values, stores UTC and
hands back aware UTC datetimes (SQLite itself has no time zones).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TAGGING_MODES = ("off", "shadow", "react", "forum")
FEEDBACK_VERDICTS = ("correct", "wrong", "corrected")
FEEDBACK_SOURCES = ("context_menu", "alert")
TAG_ACTIONS = ("react", "forum_tag", "alert")
DEFAULT_ALERT_LABELS = ("spam", "toxic")

# Stable constraint names so batch-mode Alembic migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive input is a bug and raises."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only auto-increments an `INTEGER PRIMARY KEY`; BIGINT elsewhere.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        int: BigInteger(),
        datetime: UTCDateTime(),
        date: Date(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class MessageRecord(Base):
    """One classified (or attachment-only) message. No text column, by design."""

    __tablename__ = "messages"

    message_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    guild_id: Mapped[int]
    channel_id: Mapped[int]  # where it was posted: the thread id for thread and forum posts
    parent_id: Mapped[int | None]  # the thread's parent channel, NULL for plain channels
    author_id: Mapped[int]
    reply_to_id: Mapped[int | None]
    created_at: Mapped[datetime]
    edited_at: Mapped[datetime | None]
    label: Mapped[str | None] = mapped_column(String(64))  # NULL when attachment_only
    confidence: Mapped[float | None] = mapped_column(Float)
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    model_version: Mapped[str | None] = mapped_column(String(128))
    attachment_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    classified_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_messages_guild_id_created_at", "guild_id", "created_at"),
        Index("ix_messages_channel_id_message_id", "channel_id", "message_id"),
        Index("ix_messages_author_id", "author_id"),
    )


class GuildSettings(Base):
    __tablename__ = "guild_settings"

    guild_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    summary_channel_id: Mapped[int | None]
    summary_weekday: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 0 = Monday
    summary_hour: Mapped[int] = mapped_column(Integer, default=9, server_default="9")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    alert_channel_id: Mapped[int | None]
    alert_labels: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: list(DEFAULT_ALERT_LABELS), server_default='["spam", "toxic"]'
    )
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default='{}')
    emoji_map: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default='{}')
    retention_days: Mapped[int] = mapped_column(Integer, default=90, server_default="90")
    unanswered_after_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("summary_weekday BETWEEN 0 AND 6", name="summary_weekday"),
        CheckConstraint("summary_hour BETWEEN 0 AND 23", name="summary_hour"),
        CheckConstraint("retention_days >= 1", name="retention_days"),
    )


class ChannelSettings(Base):
    __tablename__ = "channel_settings"

    guild_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    channel_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    tagging_mode: Mapped[str] = mapped_column(String(16), default="off", server_default="off")
    ignored: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        CheckConstraint(
            "tagging_mode IN ('off', 'shadow', 'react', 'forum')", name="tagging_mode"
        ),
    )


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    guild_id: Mapped[int]
    channel_id: Mapped[int]
    message_id: Mapped[int]
    moderator_id: Mapped[int]
    predicted_label: Mapped[str | None] = mapped_column(String(64))
    correct_label: Mapped[str | None] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("message_id", "moderator_id", "source"),
        CheckConstraint("verdict IN ('correct', 'wrong', 'corrected')", name="verdict"),
        CheckConstraint("source IN ('context_menu', 'alert')", name="source"),
        Index("ix_feedback_guild_id_created_at", "guild_id", "created_at"),
    )


class TagAction(Base):
    __tablename__ = "tag_actions"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    guild_id: Mapped[int]
    channel_id: Mapped[int]
    message_id: Mapped[int]
    mode: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(64))
    applied: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("action IN ('react', 'forum_tag', 'alert')", name="action"),
        Index("ix_tag_actions_guild_id_created_at", "guild_id", "created_at"),
        Index("ix_tag_actions_message_id", "message_id"),
    )


class SummaryPosted(Base):
    __tablename__ = "summaries_posted"

    guild_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    week_start: Mapped[date] = mapped_column(Date, primary_key=True)
    posted_at: Mapped[datetime] = mapped_column(default=utcnow)
    channel_id: Mapped[int | None]
    message_id: Mapped[int | None]


class PrivacyOptOut(Base):
    """A user who ran /privacy forget-me: nothing new is stored about them."""

    __tablename__ = "privacy_optouts"

    user_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Every table that holds per-guild rows (purged when the bot leaves a guild).
GUILD_SCOPED = (MessageRecord, GuildSettings, ChannelSettings, Feedback, TagAction, SummaryPosted)
