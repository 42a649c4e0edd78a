"""The weekly summary, built from the database alone (no Discord), and its schedule maths.

`build_summary()` answers "what happened in this guild during the 7 local days starting at
`week_start`"; `render_summary_text()` turns that into Markdown that reads well both in a
Discord embed and on a terminal (`python -m bot replay` prints it).

Decisions (documented in the README):
- A week is 7 local calendar days in the guild's time zone, starting at local midnight of
  `week_start`. The summary posted on the configured weekday/hour covers the 7 days that
  ended at local midnight of the posting day (Monday 09:00 → the previous Monday–Sunday).
- Label mix: each classified message counts once, under its label when the model was
  confident, otherwise under "uncertain". Attachment-only messages count in the total only.
- Unanswered question: a confident `question` with no reply from someone else within
  `unanswered_after` (a reply = a message whose `reply_to_id` points at it; inside a thread or
  forum post any later message by someone else in the same thread also counts). Questions
  younger than `unanswered_after` at build time are not judged yet and are left out.
- Busiest channels count a thread's messages towards its parent channel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Feedback, MessageRecord, TagAction

UNCERTAIN = "uncertain"
HIGHLIGHT_LABELS = ("bug_report", "suggestion")
QUESTION_LABEL = "question"
TOP_CHANNELS = 5
TOP_HIGHLIGHTS = 3
TOP_UNANSWERED = 5
_IN_CHUNK = 500  # stay well below SQLite's bound-parameter limit


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class MessageRef:
    """Where a message lives, enough for a jump link (never its text)."""

    guild_id: int
    channel_id: int
    message_id: int

    @property
    def jump_url(self) -> str:
        return jump_url(self.guild_id, self.channel_id, self.message_id)


@dataclass(frozen=True)
class ChannelCount:
    channel_id: int
    messages: int


@dataclass(frozen=True)
class Highlight:
    """A label worth calling out (bug reports, suggestions): how many, and the top few."""

    label: str
    count: int
    top: tuple[MessageRef, ...]


@dataclass(frozen=True)
class WeeklySummary:
    guild_id: int
    week_start: date
    timezone: str
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive
    as_of: datetime
    unanswered_after: timedelta
    total: int
    previous_total: int
    attachment_only: int
    label_counts: dict[str, int]
    previous_label_counts: dict[str, int]
    busiest_channels: tuple[ChannelCount, ...]
    unanswered_total: int
    unanswered: tuple[MessageRef, ...]
    highlights: tuple[Highlight, ...]
    alerts: int
    alerts_by_label: dict[str, int]
    feedback: dict[str, int]
    shadow_actions: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def classified(self) -> int:
        return sum(self.label_counts.values())

    @property
    def uncertain(self) -> int:
        return self.label_counts.get(UNCERTAIN, 0)

    @property
    def uncertain_share(self) -> float:
        return self.uncertain / self.classified if self.classified else 0.0

    @property
    def week_end(self) -> date:
        """The last local day covered (inclusive)."""
        return self.week_start + timedelta(days=6)


def current_time() -> datetime:
    """"Now" for the summary scheduler: discord.py's clock (a test harness may simulate it)."""
    import discord

    return discord.utils.utcnow()


def jump_url(guild_id: int, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def as_zone(tz: str | tzinfo) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def zone_name(tz: str | tzinfo) -> str:
    return tz if isinstance(tz, str) else getattr(tz, "key", None) or str(tz)


def week_bounds(week_start: date, tz: str | tzinfo) -> tuple[datetime, datetime]:
    """[start, end) in aware UTC for the 7 local days from `week_start` (DST-safe)."""
    zone = as_zone(tz)
    start = datetime.combine(week_start, time(0), tzinfo=zone)
    end = datetime.combine(week_start + timedelta(days=7), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


# ---------------------------------------------------------------------------- schedule


def last_due(now: datetime, weekday: int, hour: int, tz: str | tzinfo) -> datetime:
    """The most recent scheduled posting instant at or before `now` (aware, in `tz`)."""
    zone = as_zone(tz)
    local_now = now.astimezone(zone)
    days_back = (local_now.weekday() - weekday) % 7
    day = local_now.date() - timedelta(days=days_back)
    due = _local_instant(day, hour, zone)
    if due > now:
        due = _local_instant(day - timedelta(days=7), hour, zone)
    return due


def next_due(now: datetime, weekday: int, hour: int, tz: str | tzinfo) -> datetime:
    """The first scheduled posting instant strictly after `now`."""
    zone = as_zone(tz)
    previous = last_due(now, weekday, hour, zone)
    return _local_instant(previous.date() + timedelta(days=7), hour, zone)


def week_covered_by(due: datetime) -> date:
    """The `week_start` a summary posted at local instant `due` reports on."""
    return due.date() - timedelta(days=7)


def current_week_start(now: datetime, weekday: int, hour: int, tz: str | tzinfo) -> date:
    """Start of the period the NEXT scheduled summary will cover (the week "so far")."""
    return last_due(now, weekday, hour, tz).date()


def _local_instant(day: date, hour: int, zone: tzinfo) -> datetime:
    """`hour`:00 local on `day`; a time skipped by DST moves forward, as a wall clock would."""
    naive = datetime.combine(day, time(hour))
    local = naive.replace(tzinfo=zone)
    round_trip = local.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != naive:  # non-existent local time (spring forward)
        local = round_trip
    return local


# ---------------------------------------------------------------------------- queries


async def _label_counts(session: AsyncSession, guild_id: int, start: datetime, end: datetime) -> tuple[int, int, dict[str, int]]:
    in_week = and_(
        MessageRecord.guild_id == guild_id,
        MessageRecord.created_at >= start,
        MessageRecord.created_at < end,
    )
    rows = await session.execute(
        select(
            MessageRecord.attachment_only,
            MessageRecord.uncertain,
            MessageRecord.label,
            func.count(),
        )
        .where(in_week)
        .group_by(MessageRecord.attachment_only, MessageRecord.uncertain, MessageRecord.label)
    )
    total = attachment_only = 0
    labels: Counter[str] = Counter()
    for is_attachment, uncertain, label, count in rows:
        total += count
        if is_attachment or label is None:
            attachment_only += count
        elif uncertain:
            labels[UNCERTAIN] += count
        else:
            labels[label] += count
    return total, attachment_only, dict(labels)


async def _busiest_channels(session: AsyncSession, guild_id: int, start: datetime, end: datetime) -> tuple[ChannelCount, ...]:
    channel = func.coalesce(MessageRecord.parent_id, MessageRecord.channel_id)
    rows = await session.execute(
        select(channel, func.count().label("n"))
        .where(
            MessageRecord.guild_id == guild_id,
            MessageRecord.created_at >= start,
            MessageRecord.created_at < end,
        )
        .group_by(channel)
        .order_by(func.count().desc(), channel)
        .limit(TOP_CHANNELS)
    )
    return tuple(ChannelCount(channel_id, n) for channel_id, n in rows)


async def _highlights(session: AsyncSession, guild_id: int, start: datetime, end: datetime, counts: dict[str, int]) -> tuple[Highlight, ...]:
    out = []
    for label in HIGHLIGHT_LABELS:
        rows = await session.execute(
            select(MessageRecord.channel_id, MessageRecord.message_id)
            .where(
                MessageRecord.guild_id == guild_id,
                MessageRecord.created_at >= start,
                MessageRecord.created_at < end,
                MessageRecord.label == label,
                MessageRecord.uncertain.is_(False),
            )
            .order_by(MessageRecord.confidence.desc(), MessageRecord.message_id)
            .limit(TOP_HIGHLIGHTS)
        )
        top = tuple(MessageRef(guild_id, channel_id, message_id) for channel_id, message_id in rows)
        out.append(Highlight(label, counts.get(label, 0), top))
    return tuple(out)


async def _unanswered(
    session: AsyncSession,
    guild_id: int,
    start: datetime,
    end: datetime,
    *,
    unanswered_after: timedelta,
    as_of: datetime,
) -> list[MessageRef]:
    judged_before = min(end, as_of - unanswered_after)
    if judged_before <= start:
        return []
    questions = (
        await session.execute(
            select(
                MessageRecord.message_id,
                MessageRecord.channel_id,
                MessageRecord.parent_id,
                MessageRecord.author_id,
                MessageRecord.created_at,
            )
            .where(
                MessageRecord.guild_id == guild_id,
                MessageRecord.created_at >= start,
                MessageRecord.created_at < judged_before,
                MessageRecord.label == QUESTION_LABEL,
                MessageRecord.uncertain.is_(False),
            )
            .order_by(MessageRecord.message_id)
        )
    ).all()
    if not questions:
        return []

    answered: set[int] = set()
    by_id = {q.message_id: q for q in questions}
    # 1) Replies pointing at the question, from someone else, in time.
    for chunk in _chunks(list(by_id), _IN_CHUNK):
        replies = await session.execute(
            select(MessageRecord.reply_to_id, MessageRecord.author_id, MessageRecord.created_at).where(
                MessageRecord.guild_id == guild_id, MessageRecord.reply_to_id.in_(chunk)
            )
        )
        for reply_to_id, author_id, created_at in replies:
            question = by_id[reply_to_id]
            if author_id != question.author_id and created_at <= question.created_at + unanswered_after:
                answered.add(reply_to_id)
    # 2) Inside a thread / forum post: any later message by someone else in that thread.
    threaded: dict[int, list] = {}
    for q in questions:
        if q.parent_id is not None and q.message_id not in answered:
            threaded.setdefault(q.channel_id, []).append(q)
    for chunk in _chunks(list(threaded), _IN_CHUNK):
        earliest = min(q.created_at for thread in chunk for q in threaded[thread])
        latest = max(q.created_at for thread in chunk for q in threaded[thread]) + unanswered_after
        later = await session.execute(
            select(
                MessageRecord.channel_id,
                MessageRecord.message_id,
                MessageRecord.author_id,
                MessageRecord.created_at,
            ).where(
                MessageRecord.channel_id.in_(chunk),
                MessageRecord.created_at >= earliest,
                MessageRecord.created_at <= latest,
            )
        )
        for channel_id, message_id, author_id, created_at in later:
            for q in threaded[channel_id]:
                if (
                    message_id > q.message_id
                    and author_id != q.author_id
                    and created_at <= q.created_at + unanswered_after
                ):
                    answered.add(q.message_id)
    return [
        MessageRef(guild_id, q.channel_id, q.message_id) for q in questions if q.message_id not in answered
    ]


async def _tag_actions(session: AsyncSession, guild_id: int, start: datetime, end: datetime) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    rows = await session.execute(
        select(TagAction.action, TagAction.label, TagAction.applied, func.count())
        .where(TagAction.guild_id == guild_id, TagAction.created_at >= start, TagAction.created_at < end)
        .group_by(TagAction.action, TagAction.label, TagAction.applied)
    )
    alerts: Counter[str] = Counter()
    shadow: Counter[tuple[str, str]] = Counter()
    for action, label, applied, count in rows:
        if not applied:
            shadow[(action, label)] += count
        elif action == "alert":
            alerts[label] += count
    return dict(alerts), dict(shadow)


async def _feedback_counts(session: AsyncSession, guild_id: int, start: datetime, end: datetime) -> dict[str, int]:
    rows = await session.execute(
        select(Feedback.verdict, func.count())
        .where(Feedback.guild_id == guild_id, Feedback.created_at >= start, Feedback.created_at < end)
        .group_by(Feedback.verdict)
    )
    return {verdict: count for verdict, count in rows}


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


async def build_summary(
    session: AsyncSession,
    guild_id: int,
    week_start: date,
    tz: str | tzinfo,
    *,
    unanswered_after: timedelta,
    now: datetime | None = None,
) -> WeeklySummary:
    """Everything the weekly summary says about `guild_id` for the week from `week_start`.

    `now` (default: the current time) only matters for unanswered questions: a question is
    judged once `unanswered_after` has passed since it was asked.
    """
    as_of = now or datetime.now(UTC)
    if as_of.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    start, end = week_bounds(week_start, tz)
    previous_start, _ = week_bounds(week_start - timedelta(days=7), tz)

    total, attachment_only, label_counts = await _label_counts(session, guild_id, start, end)
    previous_total, _, previous_counts = await _label_counts(session, guild_id, previous_start, start)
    busiest = await _busiest_channels(session, guild_id, start, end)
    unanswered = await _unanswered(
        session, guild_id, start, end, unanswered_after=unanswered_after, as_of=as_of
    )
    highlights = await _highlights(session, guild_id, start, end, label_counts)
    alerts, shadow = await _tag_actions(session, guild_id, start, end)
    feedback = await _feedback_counts(session, guild_id, start, end)
    return WeeklySummary(
        guild_id=guild_id,
        week_start=week_start,
        timezone=zone_name(tz),
        start=start,
        end=end,
        as_of=as_of,
        unanswered_after=unanswered_after,
        total=total,
        previous_total=previous_total,
        attachment_only=attachment_only,
        label_counts=label_counts,
        previous_label_counts=previous_counts,
        busiest_channels=busiest,
        unanswered_total=len(unanswered),
        unanswered=tuple(unanswered[:TOP_UNANSWERED]),
        highlights=highlights,
        alerts=sum(alerts.values()),
        alerts_by_label=alerts,
        feedback=feedback,
        shadow_actions=shadow,
    )


# ---------------------------------------------------------------------------- text


def change_text(current: int, previous: int) -> str:
    """Week-over-week change: "+25%", "−10%", "±0%", or "new" when last week had none."""
    if previous == 0:
        return "new" if current else "±0%"
    percent = round(100 * (current - previous) / previous)
    if percent == 0:
        return "±0%"
    return f"+{percent}%" if percent > 0 else f"−{abs(percent)}%"


def ordered_labels(summary: WeeklySummary, labels: Sequence[str] = ()) -> list[str]:
    """Model labels first (in model order), then others seen in the data, "uncertain" last."""
    ordered = [label for label in labels if label != UNCERTAIN]
    for counts in (summary.label_counts, summary.previous_label_counts):
        ordered.extend(label for label in sorted(counts) if label not in ordered and label != UNCERTAIN)
    return [*ordered, UNCERTAIN]


def render_summary_text(summary: WeeklySummary, labels: Sequence[str] = ()) -> str:
    """Markdown for Discord (embed description) and terminals. Ids and links only, no text."""
    s = summary
    hours = round(s.unanswered_after.total_seconds() / 3600)
    lines = [
        f"**Weekly summary** {s.week_start:%a %d %b} – {s.week_end:%a %d %b %Y} ({s.timezone})",
        "",
        f"**Messages:** {s.total} ({change_text(s.total, s.previous_total)} vs previous week: {s.previous_total})",
    ]
    if s.attachment_only:
        lines.append(f"Attachment-only (not classified): {s.attachment_only}")
    lines.append(f"**Uncertain predictions:** {s.uncertain_share:.0%} of {s.classified}")
    lines.append("")
    lines.append("**Label mix** (this week, change)")
    shown = [
        label
        for label in ordered_labels(s, labels)
        if s.label_counts.get(label, 0) or s.previous_label_counts.get(label, 0)
    ]
    if not shown:
        lines.append("- no classified messages")
    for label in shown:
        now_n, before = s.label_counts.get(label, 0), s.previous_label_counts.get(label, 0)
        lines.append(f"- {label}: {now_n} ({change_text(now_n, before)})")

    lines.append("")
    lines.append("**Busiest channels**")
    if not s.busiest_channels:
        lines.append("- none")
    for entry in s.busiest_channels:
        lines.append(f"- <#{entry.channel_id}>: {entry.messages}")

    lines.append("")
    lines.append(f"**Questions without a reply within {hours} h:** {s.unanswered_total}")
    for ref in s.unanswered:
        lines.append(f"- {ref.jump_url}")
    if s.unanswered_total > len(s.unanswered):
        lines.append(f"- … and {s.unanswered_total - len(s.unanswered)} more")

    for highlight in s.highlights:
        lines.append("")
        lines.append(f"**{highlight.label.replace('_', ' ').capitalize()}s:** {highlight.count}")
        for ref in highlight.top:
            lines.append(f"- {ref.jump_url}")

    lines.append("")
    alert_detail = ", ".join(f"{label} {n}" for label, n in sorted(s.alerts_by_label.items()))
    lines.append(f"**Moderation alerts:** {s.alerts}" + (f" ({alert_detail})" if alert_detail else ""))
    feedback_total = sum(s.feedback.values())
    feedback_detail = ", ".join(f"{verdict} {n}" for verdict, n in sorted(s.feedback.items()))
    lines.append(
        f"**Moderator feedback:** {feedback_total}" + (f" ({feedback_detail})" if feedback_detail else "")
    )
    if s.shadow_actions:
        shadow_total = sum(s.shadow_actions.values())
        detail = ", ".join(
            f"{action} {label} {n}" for (action, label), n in sorted(s.shadow_actions.items())
        )
        lines.append(f"**Shadow mode (would have acted):** {shadow_total} ({detail})")
    return "\n".join(lines)
