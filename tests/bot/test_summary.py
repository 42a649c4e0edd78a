"""`build_summary` on a crafted database, its text, and the schedule maths (no Discord)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.summary import (
    UNCERTAIN,
    build_summary,
    change_text,
    current_week_start,
    last_due,
    next_due,
    render_summary_text,
    week_bounds,
    week_covered_by,
)
from tests.bot._features_helpers import LABELS, at, feedback, message_row, scratch_db, tag_action

G, OTHER_GUILD = 1, 2
GENERAL, HELP, THREAD_A, THREAD_B = 100, 200, 300, 301
WEEK = date(2026, 3, 2)  # a Monday
NOW = at("2026-03-09 09:00")  # when the summary is built


def _crafted_rows():
    rows = []

    def add(**fields):
        row = message_row(guild_id=G, **fields)
        rows.append(row)
        return row

    # Previous week: 4 comments + 2 questions.
    for day in range(4):
        add(channel_id=GENERAL, created_at=at(f"2026-02-2{3 + day} 12:00"), label="comment")
    for day in range(2):
        add(channel_id=HELP, created_at=at(f"2026-02-2{3 + day} 13:00"), label="question")

    # This week, #general: 3 comments, 1 uncertain comment, 1 attachment-only.
    for hour in (10, 11, 12):
        add(channel_id=GENERAL, created_at=at(f"2026-03-02 {hour}:00"), label="comment")
    add(channel_id=GENERAL, created_at=at("2026-03-02 13:00"), label="comment", uncertain=True)
    add(channel_id=GENERAL, created_at=at("2026-03-02 14:00"), attachment_only=True)

    # #help: q1 answered by a reply from someone else.
    q1 = add(channel_id=HELP, created_at=at("2026-03-02 10:00"), label="question", author_id=1)
    add(channel_id=HELP, created_at=at("2026-03-02 11:00"), label="answer", author_id=2, reply_to_id=q1.message_id)
    # q2: only the asker replied to themselves -> unanswered.
    q2 = add(channel_id=HELP, created_at=at("2026-03-03 10:00"), label="question", author_id=1)
    add(channel_id=HELP, created_at=at("2026-03-03 10:05"), label="comment", author_id=1, reply_to_id=q2.message_id)
    # q3: answered only after 48 h -> no reply within 24 h.
    q3 = add(channel_id=HELP, created_at=at("2026-03-03 12:00"), label="question", author_id=3)
    add(channel_id=HELP, created_at=at("2026-03-05 12:00"), label="answer", author_id=2, reply_to_id=q3.message_id)
    # Bug reports / suggestion.
    bug_low = add(channel_id=HELP, created_at=at("2026-03-04 08:00"), label="bug_report", confidence=0.8)
    bug_high = add(channel_id=HELP, created_at=at("2026-03-04 09:00"), label="bug_report", confidence=0.95)
    add(channel_id=HELP, created_at=at("2026-03-04 10:00"), label="suggestion")
    # q6 asked Sunday evening: too recent to judge at NOW with a 24 h window.
    add(channel_id=HELP, created_at=at("2026-03-08 20:00"), label="question", author_id=7)
    # An uncertain question is not listed as unanswered.
    add(channel_id=HELP, created_at=at("2026-03-04 11:00"), label="question", uncertain=True, author_id=8)

    # Thread A (in #help): q4 answered by a later message from someone else in the thread.
    add(channel_id=THREAD_A, parent_id=HELP, created_at=at("2026-03-04 09:00"), label="question", author_id=4)
    add(channel_id=THREAD_A, parent_id=HELP, created_at=at("2026-03-04 10:00"), label="answer", author_id=5)
    # Thread B: q5 with only the asker's own follow-up -> unanswered.
    q5 = add(channel_id=THREAD_B, parent_id=HELP, created_at=at("2026-03-05 09:00"), label="question", author_id=6)
    add(channel_id=THREAD_B, parent_id=HELP, created_at=at("2026-03-05 09:30"), label="comment", author_id=6)

    # Next week and another guild: must not leak in.
    add(channel_id=GENERAL, created_at=at("2026-03-09 00:30"), label="spam")
    rows.append(message_row(guild_id=OTHER_GUILD, channel_id=999, created_at=at("2026-03-03 10:00"), label="question"))

    actions = [
        tag_action(guild_id=G, channel_id=GENERAL, message_id=1, action="alert", label="spam", applied=True, created_at=at("2026-03-03 10:00")),
        tag_action(guild_id=G, channel_id=GENERAL, message_id=2, action="alert", label="spam", applied=True, created_at=at("2026-03-04 10:00")),
        tag_action(guild_id=G, channel_id=HELP, message_id=3, mode="shadow", action="react", label="question", applied=False, created_at=at("2026-03-04 10:00")),
        tag_action(guild_id=G, channel_id=GENERAL, message_id=4, action="alert", label="toxic", applied=True, created_at=at("2026-02-25 10:00")),
    ]
    judged = [
        feedback(guild_id=G, channel_id=GENERAL, message_id=1, moderator_id=9, predicted_label="spam", verdict="correct", source="alert", created_at=at("2026-03-03 11:00")),
        feedback(guild_id=G, channel_id=GENERAL, message_id=2, moderator_id=9, predicted_label="spam", verdict="correct", source="alert", created_at=at("2026-03-04 11:00")),
        feedback(guild_id=G, channel_id=GENERAL, message_id=5, moderator_id=9, predicted_label="toxic", verdict="wrong", source="alert", created_at=at("2026-03-05 11:00")),
    ]
    expected_unanswered = [q2.message_id, q3.message_id, q5.message_id]
    return rows + actions + judged, expected_unanswered, [bug_high.message_id, bug_low.message_id]


@pytest.fixture
async def crafted(tmp_path):
    async with scratch_db(tmp_path) as sessionmaker:
        objects, unanswered, bugs = _crafted_rows()
        async with sessionmaker.begin() as session:
            session.add_all(objects)
        yield sessionmaker, unanswered, bugs


async def test_counts_label_mix_and_week_over_week(crafted):
    sessionmaker, _, _ = crafted
    async with sessionmaker() as session:
        summary = await build_summary(session, G, WEEK, "UTC", unanswered_after=timedelta(hours=24), now=NOW)
    assert summary.total == 20
    assert summary.previous_total == 6
    assert summary.attachment_only == 1
    assert summary.label_counts == {
        "comment": 5,
        UNCERTAIN: 2,
        "question": 6,
        "answer": 3,
        "bug_report": 2,
        "suggestion": 1,
    }
    assert summary.previous_label_counts == {"comment": 4, "question": 2}
    assert summary.uncertain_share == pytest.approx(2 / 19)
    assert [(c.channel_id, c.messages) for c in summary.busiest_channels] == [(HELP, 15), (GENERAL, 5)]


async def test_unanswered_questions_and_highlights(crafted):
    sessionmaker, expected_unanswered, bugs = crafted
    async with sessionmaker() as session:
        summary = await build_summary(session, G, WEEK, "UTC", unanswered_after=timedelta(hours=24), now=NOW)
    assert [ref.message_id for ref in summary.unanswered] == expected_unanswered
    assert summary.unanswered_total == 3
    bug, suggestion = summary.highlights
    assert (bug.label, bug.count) == ("bug_report", 2)
    assert [ref.message_id for ref in bug.top] == bugs  # highest confidence first
    assert (suggestion.label, suggestion.count) == ("suggestion", 1)
    assert summary.unanswered[0].jump_url == f"https://discord.com/channels/{G}/{HELP}/{expected_unanswered[0]}"


async def test_a_longer_window_or_later_build_changes_what_is_unanswered(crafted):
    sessionmaker, expected_unanswered, _ = crafted
    async with sessionmaker() as session:
        # With 72 h the late answer to q3 counts, and q6 (Sunday 20:00) is not judged yet.
        relaxed = await build_summary(session, G, WEEK, "UTC", unanswered_after=timedelta(hours=72), now=at("2026-03-11 12:00"))
        # A week later q6 has had its 24 h: now it is unanswered too.
        later = await build_summary(session, G, WEEK, "UTC", unanswered_after=timedelta(hours=24), now=at("2026-03-16 09:00"))
    q2, _q3, q5 = expected_unanswered
    assert {ref.message_id for ref in relaxed.unanswered} == {q2, q5}
    assert later.unanswered_total == 4


async def test_alerts_feedback_and_shadow_actions(crafted):
    sessionmaker, _, _ = crafted
    async with sessionmaker() as session:
        summary = await build_summary(session, G, WEEK, "UTC", unanswered_after=timedelta(hours=24), now=NOW)
    assert summary.alerts == 2
    assert summary.alerts_by_label == {"spam": 2}
    assert summary.feedback == {"correct": 2, "wrong": 1}
    assert summary.shadow_actions == {("react", "question"): 1}


async def test_render_summary_text_mentions_every_section(crafted):
    sessionmaker, expected_unanswered, bugs = crafted
    async with sessionmaker() as session:
        summary = await build_summary(session, G, WEEK, "UTC", unanswered_after=timedelta(hours=24), now=NOW)
    text = render_summary_text(summary, LABELS)
    assert "Mon 02 Mar – Sun 08 Mar 2026 (UTC)" in text
    assert "**Messages:** 20 (+233% vs previous week: 6)" in text
    assert "- question: 6 (+200%)" in text
    assert "- comment: 5 (+25%)" in text
    assert "- bug_report: 2 (new)" in text
    assert "Uncertain predictions:** 11% of 19" in text
    assert f"- <#{HELP}>: 15" in text
    assert "Questions without a reply within 24 h:** 3" in text
    for message_id in expected_unanswered + bugs:
        assert f"/{message_id}" in text
    assert "**Moderation alerts:** 2 (spam 2)" in text
    assert "**Moderator feedback:** 3 (correct 2, wrong 1)" in text
    assert "Shadow mode (would have acted):** 1 (react question 1)" in text
    # Labels that never occurred are left out; the text is short enough for an embed.
    assert "- toxic:" not in text
    assert len(text) < 4096


async def test_an_empty_guild_gets_a_sensible_summary(tmp_path):
    async with scratch_db(tmp_path) as sessionmaker, sessionmaker() as session:
        summary = await build_summary(session, 42, WEEK, "Europe/Berlin", unanswered_after=timedelta(hours=24), now=NOW)
    assert summary.total == 0 and summary.uncertain_share == 0.0
    text = render_summary_text(summary, LABELS)
    assert "**Messages:** 0 (±0% vs previous week: 0)" in text
    assert "no classified messages" in text


async def test_week_follows_the_guild_time_zone(tmp_path):
    async with scratch_db(tmp_path) as sessionmaker:
        async with sessionmaker.begin() as session:
            # 23:30 UTC Sunday 1 March is already Monday 00:30 in Berlin (UTC+1).
            session.add(message_row(guild_id=G, channel_id=GENERAL, created_at=at("2026-03-01 23:30")))
        async with sessionmaker() as session:
            berlin = await build_summary(session, G, WEEK, ZoneInfo("Europe/Berlin"), unanswered_after=timedelta(hours=24), now=NOW)
            utc = await build_summary(session, G, WEEK, "UTC", unanswered_after=timedelta(hours=24), now=NOW)
    assert (berlin.total, berlin.previous_total) == (1, 0)
    assert (utc.total, utc.previous_total) == (0, 1)
    assert berlin.timezone == "Europe/Berlin"


def test_week_bounds_are_dst_safe():
    start, end = week_bounds(date(2026, 3, 23), "Europe/Berlin")  # DST starts Sun 29 March
    assert start == datetime(2026, 3, 22, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert end - start == timedelta(days=7) - timedelta(hours=1)


def test_schedule_maths():
    berlin = ZoneInfo("Europe/Berlin")
    # Wednesday 4 March 2026, 12:00 UTC; summaries on Monday 09:00 Berlin.
    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    due = last_due(now, 0, 9, berlin)
    assert due == datetime(2026, 3, 2, 9, 0, tzinfo=berlin)
    assert week_covered_by(due) == date(2026, 2, 23)
    assert next_due(now, 0, 9, berlin) == datetime(2026, 3, 9, 9, 0, tzinfo=berlin)
    assert current_week_start(now, 0, 9, berlin) == date(2026, 3, 2)
    # Exactly at the due instant it counts as due; a minute before, last week's is the latest.
    exact = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)  # 09:00 Berlin
    assert last_due(exact, 0, 9, berlin) == exact
    assert last_due(exact - timedelta(minutes=1), 0, 9, berlin) == due
    # Friday 17:00 in Tokyo.
    assert last_due(now, 4, 17, "Asia/Tokyo") == datetime(2026, 2, 27, 17, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def test_schedule_skips_forward_over_a_dst_gap():
    # 02:30 on Sunday 29 March 2026 does not exist in Berlin: the wall clock jumps to 03:30.
    berlin = ZoneInfo("Europe/Berlin")
    due = last_due(datetime(2026, 3, 30, 12, 0, tzinfo=UTC), 6, 2, berlin)
    assert due.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_change_text():
    assert change_text(5, 4) == "+25%"
    assert change_text(3, 4) == "−25%"
    assert change_text(4, 4) == "±0%"
    assert change_text(1, 0) == "new"
    assert change_text(0, 0) == "±0%"
