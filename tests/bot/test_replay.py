"""Replay of DiscordChatExporter exports: same filter → classifier → writer path, same DB."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import MessageRecord
from bot.replay import ReplayError, replay

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "export.json"


async def stored(settings) -> list[MessageRecord]:
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(await session.scalars(select(MessageRecord).order_by(MessageRecord.message_id)))
    finally:
        await engine.dispose()


def test_sample_export_is_realistic():
    data = json.loads(SAMPLE.read_text())
    messages = data["messages"]
    assert 120 <= len(messages) <= 200
    assert {"Default", "Reply"} <= {m["type"] for m in messages}
    assert any(m["author"]["isBot"] for m in messages)
    assert any(not m["content"] and m["attachments"] for m in messages)
    days = {m["timestamp"][:10] for m in messages}
    assert len(days) >= 12  # about two weeks


async def test_replay_sample_writes_rows_and_prints_the_weekly_summary(bot_settings, tiny_classifier):
    out = io.StringIO()
    report = await replay(bot_settings, [SAMPLE], classifier=tiny_classifier, out=out)
    data = json.loads(SAMPLE.read_text())
    messages = {m["id"]: m for m in data["messages"]}
    humans = [m for m in messages.values() if not m["author"]["isBot"]]
    assert report.seen == len(messages) and report.written == len(humans)
    assert report.skipped == {"bot": len(messages) - len(humans)}

    rows = await stored(bot_settings)
    assert {str(r.message_id) for r in rows} == {m["id"] for m in humans}
    for row in rows:
        source = messages[str(row.message_id)]
        assert row.guild_id == int(data["guild"]["id"]) and row.channel_id == int(data["channel"]["id"])
        assert row.created_at.isoformat(timespec="milliseconds") == source["timestamp"]
        if source["type"] == "Reply":
            assert row.reply_to_id == int(source["reference"]["messageId"])
        if not source["content"]:
            assert row.attachment_only and row.label is None
        else:
            assert row.label in tiny_classifier.labels
    edited = [r for r in rows if messages[str(r.message_id)]["timestampEdited"]]
    assert len(edited) == 1 and edited[0].edited_at is not None

    text = out.getvalue()
    assert f"replayed {len(messages)} message(s)" in text
    assert "10 Mar" in text  # the export's latest week (Mon 10 Mar 2025)
    assert "pip" not in text.lower().split("weekly summary")[-1]  # the summary quotes no text


async def test_replay_is_idempotent_and_accepts_directories(bot_settings, tiny_classifier, tmp_path):
    data = json.loads(SAMPLE.read_text())
    thread = copy.deepcopy(data)
    thread["channel"] = {**data["channel"], "id": "880000000000000555", "type": "GuildPublicThread",
                         "categoryId": data["channel"]["id"], "name": "pip-help"}
    thread["messages"] = [
        {**m, "id": str(int(m["id"]) + 7)} for m in data["messages"][:5]
    ]
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "a-channel.json").write_text(json.dumps(data))
    (folder / "b-thread.json").write_text(json.dumps(thread))

    first = await replay(bot_settings, [folder], classifier=tiny_classifier, out=io.StringIO())
    second = await replay(bot_settings, [folder, SAMPLE], classifier=tiny_classifier, out=io.StringIO())
    rows = await stored(bot_settings)
    assert len(rows) == first.written == 142 + 5
    assert second.written == 142 * 2 + 5  # re-written, not duplicated
    thread_rows = [r for r in rows if r.channel_id == 880000000000000555]
    assert len(thread_rows) == 5 and {r.parent_id for r in thread_rows} == {int(data["channel"]["id"])}


@pytest.mark.parametrize(
    ("content", "match"),
    [("not json", "not a readable JSON export"), ('{"foo": 1}', "no 'messages' list"),
     ('{"guild": {"id": "0"}, "channel": {"id": "1"}, "messages": []}', "pass --guild-id")],
)
async def test_bad_exports_give_a_clear_error_and_write_nothing(bot_settings, tiny_classifier, tmp_path, content, match):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(ReplayError, match=match):
        await replay(bot_settings, [SAMPLE, bad], classifier=tiny_classifier, out=io.StringIO())


async def test_guild_id_override_and_optouts_apply(bot_settings, tiny_classifier):
    await replay(bot_settings, [SAMPLE], guild_id=77, classifier=tiny_classifier, out=io.StringIO())
    rows = await stored(bot_settings)
    assert {r.guild_id for r in rows} == {77}
    engine = create_engine(bot_settings.database_url)
    async with engine.begin() as connection:
        from bot.db.models import PrivacyOptOut

        await connection.execute(MessageRecord.__table__.delete())
        await connection.execute(PrivacyOptOut.__table__.insert().values(user_id=880000000000001001, created_at=rows[0].created_at))
    await engine.dispose()
    await replay(bot_settings, [SAMPLE], classifier=tiny_classifier, out=io.StringIO())
    rows = await stored(bot_settings)
    assert rows and all(r.author_id != 880000000000001001 for r in rows)
    engine = create_engine(bot_settings.database_url)
    async with engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(MessageRecord)) == len(rows)
    await engine.dispose()
