"""Replay DiscordChatExporter JSON exports through the bot's own pipeline, offline.

`python -m bot replay export.json [more.json | a/directory ...] [--guild-id N]` runs every
message through the same filter → micro-batcher → writer path as live traffic, into the same
(migrated) database, then prints the weekly summary for the export's latest week. Handy for
trying a model on a real server's history without connecting a bot. No text is stored.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.db.models import MessageRecord
from bot.pipeline import MessageFacts
from bot.settings import Settings

log = logging.getLogger(__name__)

# DiscordChatExporter message types that carry user-written text; the rest are system
# notices (joins, pins, thread created, boosts, ...).
CLASSIFIABLE_TYPES = frozenset({"Default", "Reply"})


class ReplayError(Exception):
    """An export cannot be replayed; the message names the file and the problem."""


@dataclass(frozen=True)
class ExportChannel:
    guild_id: int
    channel_id: int
    parent_id: int | None  # a thread's parent channel (DCE calls it the category)
    name: str
    source: Path


@dataclass
class ReplayReport:
    files: int = 0
    seen: int = 0
    written: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    guild_ids: set[int] = field(default_factory=set)
    latest: datetime | None = None


def _int(value: Any, what: str, source: Path) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ReplayError(f"{source}: {what} {value!r} is not a Discord id") from None


def _time(value: Any, what: str, source: Path) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ReplayError(f"{source}: {what} {value!r} is not an ISO timestamp") from None
    if moment.tzinfo is None:
        raise ReplayError(f"{source}: {what} {value!r} has no UTC offset")
    return moment


def export_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories to their *.json files (sorted); keep files as given."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.rglob("*.json"))
            if not found:
                raise ReplayError(f"{path}: no .json exports in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ReplayError(f"{path}: no such file or directory")
    return files


def read_export(path: Path, guild_override: int | None = None) -> tuple[ExportChannel, list[dict]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReplayError(f"{path}: not a readable JSON export ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise ReplayError(f"{path}: not a DiscordChatExporter JSON export (no 'messages' list)")
    guild = data.get("guild") or {}
    channel = data.get("channel") or {}
    guild_id = guild_override if guild_override is not None else _int(guild.get("id"), "guild id", path)
    if guild_id == 0:
        raise ReplayError(f"{path}: this export has no server (a DM?); pass --guild-id")
    channel_type = str(channel.get("type", ""))
    parent = channel.get("categoryId") if "Thread" in channel_type else None
    export_channel = ExportChannel(
        guild_id=guild_id,
        channel_id=_int(channel.get("id"), "channel id", path),
        parent_id=_int(parent, "thread parent id", path) if parent else None,
        name=str(channel.get("name", "")),
        source=path,
    )
    return export_channel, data["messages"]


def facts_from_export(record: dict, channel: ExportChannel) -> tuple[MessageFacts | None, str | None]:
    """The export counterpart of `pipeline.facts_from_message`: (facts, None) or (None, reason)."""
    author = record.get("author") or {}
    if author.get("isBot"):
        return None, "bot"
    if record.get("type", "Default") not in CLASSIFIABLE_TYPES:
        return None, "system"
    content = record.get("content") or ""
    attachments = record.get("attachments") or []
    if not content.strip() and not attachments:
        return None, "empty"
    source = channel.source
    reply_to = None
    reference = record.get("reference") or {}
    if record.get("type") == "Reply" and reference.get("messageId"):
        reply_to = _int(reference["messageId"], "reply reference", source)
    edited = record.get("timestampEdited")
    return (
        MessageFacts(
            message_id=_int(record.get("id"), "message id", source),
            guild_id=channel.guild_id,
            channel_id=channel.channel_id,
            parent_id=channel.parent_id,
            author_id=_int(author.get("id"), "author id", source),
            reply_to_id=reply_to,
            created_at=_time(record.get("timestamp"), "timestamp", source),
            edited_at=_time(edited, "timestampEdited", source) if edited else None,
            text=content,
            attachment_only=not content.strip() and bool(attachments),
        ),
        None,
    )


def week_start_for(moment: datetime, tz: ZoneInfo) -> date:
    local = moment.astimezone(tz).date()
    return local - timedelta(days=local.weekday())


async def replay(
    settings: Settings,
    paths: Sequence[str | Path],
    *,
    guild_id: int | None = None,
    classifier: Any = None,
    out: TextIO | None = None,
    chunk: int = 256,
) -> ReplayReport:
    """Classify the exports into the database, then print the latest week's summary."""
    from bot.app import create_bot

    out = out or sys.stdout
    files = export_files(paths)
    exports = [read_export(path, guild_id) for path in files]  # validate all before writing
    services = create_bot(settings.model_copy(update={"metrics_port": 0}), classifier=classifier)
    await services.prepare()  # the bot's own services: migrations, model, batcher, writer
    services.pipeline.guild_active = None  # no gateway here: every export guild is wanted
    report = ReplayReport(files=len(files))
    try:
        for channel, records in exports:
            report.guild_ids.add(channel.guild_id)
            items: list[tuple[MessageFacts, Any]] = []
            for record in records:
                report.seen += 1
                facts, reason = facts_from_export(record, channel)
                if facts is None:
                    report.skipped[reason or "other"] += 1
                    continue
                if report.latest is None or facts.created_at > report.latest:
                    report.latest = facts.created_at
                items.append((facts, record))
            for start in range(0, len(items), chunk):
                batch = items[start : start + chunk]
                report.written += await services.pipeline.process_bulk(
                    batch, source="replay", event=None
                )
        await services.writer.flush()
        print(
            f"replayed {report.seen} message(s) from {report.files} file(s): "
            f"{report.written} stored, skipped {dict(report.skipped) or 'none'}",
            file=out,
        )
        if report.latest is not None:
            for gid in sorted(report.guild_ids):
                await print_week_summary(services, gid, report.latest, out)
    finally:
        await services.shutdown_services()
    return report


async def print_week_summary(services: Any, guild_id: int, latest: datetime, out: TextIO) -> None:
    config = await services.guild_configs.get(guild_id)
    tz = ZoneInfo(config.timezone)
    week_start = week_start_for(latest, tz)
    try:
        from bot.summary import build_summary, render_summary_text
    except ImportError:  # the summaries module is optional for replay
        build_summary = render_summary_text = None
    if build_summary is not None and render_summary_text is not None:
        async with services.sessionmaker() as session:
            summary = build_summary(
                session,
                guild_id,
                week_start,
                tz,
                unanswered_after=timedelta(hours=config.unanswered_after_hours),
            )
            if inspect.isawaitable(summary):
                summary = await summary
        print(render_summary_text(summary, services.classifier.labels), file=out)
        return
    await print_label_counts(services.sessionmaker, guild_id, week_start, tz, out)


async def print_label_counts(
    sessionmaker: Callable[[], Any], guild_id: int, week_start: date, tz: ZoneInfo, out: TextIO
) -> None:
    """Fallback summary: messages per label in the week (used when bot.summary is absent)."""
    start = datetime.combine(week_start, datetime.min.time(), tzinfo=tz)
    end = start + timedelta(days=7)
    async with sessionmaker() as session:
        rows = await session.execute(
            select(MessageRecord.label, func.count())
            .where(
                MessageRecord.guild_id == guild_id,
                MessageRecord.created_at >= start,
                MessageRecord.created_at < end,
            )
            .group_by(MessageRecord.label)
            .order_by(func.count().desc())
        )
        counts = [(label or "(attachment only)", n) for label, n in rows]
    print(f"Week of {week_start.isoformat()} in guild {guild_id}:", file=out)
    for label, n in counts:
        print(f"  {label:<18} {n}", file=out)


async def replay_main(
    settings: Settings,
    paths: Sequence[str],
    *,
    guild_id: int | None = None,
    classifier: Any = None,
) -> int:
    report = await replay(settings, paths, guild_id=guild_id, classifier=classifier)
    return 0 if report.seen else 1
