"""Per-guild and per-channel settings, cached in memory with explicit invalidation.

Every message consults its guild's config (ignored channel? retention?), so reads come from
the cache; writes (`update`, `set_channel`) go to the database first and then replace the
cached entry, so the cache never shows a value the database does not hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import DEFAULT_ALERT_LABELS, TAGGING_MODES, ChannelSettings, GuildSettings

_EMPTY: Mapping[Any, Any] = MappingProxyType({})


@dataclass(frozen=True)
class ChannelConfig:
    tagging_mode: str = "off"
    ignored: bool = False


DEFAULT_CHANNEL = ChannelConfig()


@dataclass(frozen=True)
class GuildConfig:
    """A read-only snapshot of one guild's settings (defaults when the guild has no row)."""

    guild_id: int
    summary_channel_id: int | None = None
    summary_weekday: int = 0
    summary_hour: int = 9
    timezone: str = "UTC"
    alert_channel_id: int | None = None
    alert_labels: tuple[str, ...] = DEFAULT_ALERT_LABELS
    thresholds: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    emoji_map: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    retention_days: int = 90
    unanswered_after_hours: int = 24
    updated_at: datetime | None = None
    channels: Mapping[int, ChannelConfig] = field(default_factory=lambda: _EMPTY)

    def channel(self, channel_id: int, parent_id: int | None = None) -> ChannelConfig:
        """Settings for a channel; a thread without its own row inherits its parent's."""
        own = self.channels.get(channel_id)
        if own is not None:
            return own
        if parent_id is not None:
            return self.channels.get(parent_id, DEFAULT_CHANNEL)
        return DEFAULT_CHANNEL

    def is_ignored(self, channel_id: int, parent_id: int | None = None) -> bool:
        """Ignoring a channel also ignores its threads (and a forum's posts)."""
        if self.channels.get(channel_id, DEFAULT_CHANNEL).ignored:
            return True
        return parent_id is not None and self.channels.get(parent_id, DEFAULT_CHANNEL).ignored

    def tagging_mode(self, channel_id: int, parent_id: int | None = None) -> str:
        return self.channel(channel_id, parent_id).tagging_mode

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


# Fields `update()` accepts, with their validators (value -> normalised value or ValueError).
def _weekday(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
        raise ValueError("summary_weekday must be an integer 0 (Monday) .. 6 (Sunday)")
    return value


def _hour(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 23:
        raise ValueError("summary_hour must be an integer 0..23")
    return value


def _timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from exc
    return str(value)


def _optional_id(name: str):
    def check(value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive id or None")
        return value

    return check


def _labels(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError("alert_labels must be a list of label names")
    labels = [str(item) for item in value]
    return list(dict.fromkeys(labels))


def _thresholds(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ValueError("thresholds must map label -> float")
    out: dict[str, float] = {}
    for label, threshold in value.items():
        number = float(threshold)
        if not 0.0 <= number <= 1.0:
            raise ValueError(f"threshold for {label!r} must be between 0 and 1")
        out[str(label)] = number
    return out


def _emoji_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError("emoji_map must map label -> emoji")
    return {str(label): str(emoji) for label, emoji in value.items()}


def _positive(name: str, upper: int):
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
            raise ValueError(f"{name} must be an integer 1..{upper}")
        return value

    return check


GUILD_FIELDS = {
    "summary_channel_id": _optional_id("summary_channel_id"),
    "summary_weekday": _weekday,
    "summary_hour": _hour,
    "timezone": _timezone,
    "alert_channel_id": _optional_id("alert_channel_id"),
    "alert_labels": _labels,
    "thresholds": _thresholds,
    "emoji_map": _emoji_map,
    "retention_days": _positive("retention_days", 3650),
    "unanswered_after_hours": _positive("unanswered_after_hours", 24 * 365),
}


class GuildConfigCache:
    """`get(guild_id)` from memory; writes go through to the database and refresh the entry."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, default_retention_days: int = 90
    ) -> None:
        self._sessionmaker = sessionmaker
        self._default_retention_days = default_retention_days
        self._cache: dict[int, GuildConfig] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def _lock(self, guild_id: int) -> asyncio.Lock:
        return self._locks.setdefault(guild_id, asyncio.Lock())

    def cached(self, guild_id: int) -> GuildConfig | None:
        """The cached snapshot without touching the database (None when not loaded yet)."""
        return self._cache.get(guild_id)

    async def get(self, guild_id: int) -> GuildConfig:
        config = self._cache.get(guild_id)
        if config is not None:
            return config
        async with self._lock(guild_id):
            config = self._cache.get(guild_id)
            if config is None:
                config = await self._load(guild_id)
                self._cache[guild_id] = config
            return config

    def invalidate(self, guild_id: int | None = None) -> None:
        """Forget one guild (or all); the next `get` reloads from the database."""
        if guild_id is None:
            self._cache.clear()
        else:
            self._cache.pop(guild_id, None)

    async def update(self, guild_id: int, **fields: Any) -> GuildConfig:
        """Validate and persist guild fields (ValueError names the bad one); returns the new config."""
        unknown = set(fields) - set(GUILD_FIELDS)
        if unknown:
            raise ValueError(f"unknown guild setting(s): {', '.join(sorted(unknown))}")
        values = {name: GUILD_FIELDS[name](value) for name, value in fields.items()}
        now = datetime.now(UTC)
        async with self._lock(guild_id):
            async with self._sessionmaker.begin() as session:
                statement = insert(GuildSettings).values(
                    {
                        "guild_id": guild_id,
                        "retention_days": self._default_retention_days,
                        "updated_at": now,
                        **values,
                    }
                )
                statement = statement.on_conflict_do_update(
                    index_elements=[GuildSettings.guild_id], set_={**values, "updated_at": now}
                )
                await session.execute(statement)
            self._cache.pop(guild_id, None)
            config = await self._load(guild_id)
            self._cache[guild_id] = config
            return config

    async def set_channel(
        self,
        guild_id: int,
        channel_id: int,
        *,
        tagging_mode: str | None = None,
        ignored: bool | None = None,
    ) -> GuildConfig:
        """Persist a channel's tagging mode and/or ignored flag; returns the new guild config."""
        values: dict[str, Any] = {}
        if tagging_mode is not None:
            if tagging_mode not in TAGGING_MODES:
                raise ValueError(f"tagging_mode must be one of {', '.join(TAGGING_MODES)}")
            values["tagging_mode"] = tagging_mode
        if ignored is not None:
            values["ignored"] = bool(ignored)
        if not values:
            raise ValueError("set_channel needs tagging_mode and/or ignored")
        async with self._lock(guild_id):
            async with self._sessionmaker.begin() as session:
                statement = insert(ChannelSettings).values(
                    guild_id=guild_id, channel_id=channel_id, **values
                )
                statement = statement.on_conflict_do_update(
                    index_elements=[ChannelSettings.guild_id, ChannelSettings.channel_id],
                    set_=values,
                )
                await session.execute(statement)
            self._cache.pop(guild_id, None)
            config = await self._load(guild_id)
            self._cache[guild_id] = config
            return config

    async def configured_guild_ids(self) -> list[int]:
        """Guilds that have a settings row (e.g. for the weekly-summary scheduler)."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(select(GuildSettings.guild_id))
            return list(rows)

    async def _load(self, guild_id: int) -> GuildConfig:
        async with self._sessionmaker() as session:
            row = await session.get(GuildSettings, guild_id)
            channel_rows = (
                await session.scalars(
                    select(ChannelSettings).where(ChannelSettings.guild_id == guild_id)
                )
            ).all()
        channels = MappingProxyType(
            {
                channel.channel_id: ChannelConfig(channel.tagging_mode, bool(channel.ignored))
                for channel in channel_rows
            }
        )
        if row is None:
            return GuildConfig(
                guild_id=guild_id, retention_days=self._default_retention_days, channels=channels
            )
        return GuildConfig(
            guild_id=guild_id,
            summary_channel_id=row.summary_channel_id,
            summary_weekday=row.summary_weekday,
            summary_hour=row.summary_hour,
            timezone=row.timezone,
            alert_channel_id=row.alert_channel_id,
            alert_labels=tuple(row.alert_labels or ()),
            thresholds=MappingProxyType(dict(row.thresholds or {})),
            emoji_map=MappingProxyType(dict(row.emoji_map or {})),
            retention_days=row.retention_days,
            unanswered_after_hours=row.unanswered_after_hours,
            updated_at=row.updated_at,
            channels=channels,
        )
