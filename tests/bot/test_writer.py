"""MessageWriter: batching, idempotent upserts, ordered deletes, and a really locked database."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.db.engine import create_engine
from bot.db.migrate import upgrade
from bot.db.models import MessageRecord
from bot.db.writer import MessageRow, MessageWriter

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def row(message_id: int, label: str | None = "question", **changes) -> MessageRow:
    values = dict(
        message_id=message_id, guild_id=1, channel_id=2, parent_id=None, author_id=3,
        reply_to_id=None, created_at=T0 + timedelta(seconds=message_id), edited_at=None,
        label=label, confidence=0.9 if label else None,
        scores={"question": 0.9, "answer": 0.1} if label else None, uncertain=False,
        model_version="tiny-1" if label else None, attachment_only=label is None,
        classified_at=T0,
    )
    values.update(changes)
    return MessageRow(**values)


@pytest.fixture
def db_file(tmp_path):
    path = tmp_path / "bot.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def engine(db_file):
    engine = create_engine(f"sqlite+aiosqlite:///{db_file}", busy_timeout_ms=50)
    yield engine
    await engine.dispose()


async def stored(engine) -> dict[int, MessageRecord]:
    async with engine.connect() as connection:
        result = await connection.execute(select(MessageRecord))
        return {r.message_id: r for r in result}


async def test_batches_by_size_and_by_interval(engine):
    writer = MessageWriter(engine, batch_size=3, flush_interval_ms=60_000)
    await writer.start()
    pending = [writer.submit_upsert(row(i)) for i in (1, 2)]
    await asyncio.sleep(0.2)
    assert not any(f.done() for f in pending) and await stored(engine) == {}
    pending.append(writer.submit_upsert(row(3)))  # the third op fills the batch
    await asyncio.wait_for(asyncio.gather(*pending), 5)
    assert set(await stored(engine)) == {1, 2, 3}
    await writer.close()

    timed = MessageWriter(engine, batch_size=1000, flush_interval_ms=30)
    await timed.start()
    await asyncio.wait_for(timed.upsert(row(4)), 5)  # no batch fills: the interval flushes it
    assert 4 in await stored(engine)
    await timed.close()


async def test_upsert_is_idempotent_and_updates_in_place(engine):
    writer = MessageWriter(engine, batch_size=10, flush_interval_ms=5)
    await writer.start()
    await writer.upsert(row(7))
    await writer.upsert([row(7), row(7)])
    edited = row(7, label="answer", scores={"answer": 0.8, "question": 0.2}, confidence=0.8,
                 edited_at=T0 + timedelta(minutes=3), classified_at=T0 + timedelta(minutes=3))
    await writer.upsert(edited)
    rows = await stored(engine)
    assert list(rows) == [7]
    assert (rows[7].label, rows[7].confidence) == ("answer", 0.8)
    assert rows[7].edited_at.replace(tzinfo=UTC) == T0 + timedelta(minutes=3)
    async with engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(MessageRecord)) == 1
    await writer.close()


async def test_operations_apply_in_arrival_order(engine):
    writer = MessageWriter(engine, batch_size=100, flush_interval_ms=50)
    await writer.start()
    futures = [
        writer.submit_upsert([row(1), row(2)]),
        writer.submit_delete([1]),
        writer.submit_delete([3]),
        writer.submit_upsert(row(3)),  # delete-then-insert: 3 exists afterwards
    ]
    await writer.flush()
    assert all(f.done() for f in futures)
    assert set(await stored(engine)) == {2, 3}
    await writer.close()


async def test_a_rejected_row_fails_alone(engine):
    writer = MessageWriter(engine, batch_size=100, flush_interval_ms=20)
    await writer.start()
    good = writer.submit_upsert(row(1))
    bad = writer.submit_upsert(row(2, created_at=datetime(2026, 1, 1)))  # naive: refused
    also_good = writer.submit_upsert(row(3))
    await writer.flush()
    with pytest.raises(Exception, match="naive datetime"):
        await bad
    await good
    await also_good
    assert set(await stored(engine)) == {1, 3}
    assert writer.failed_ops == 1
    await writer.close()


async def test_locked_database_is_retried_without_loss_or_blocking_the_loop(db_file, engine):
    retried: list[int] = []
    writer = MessageWriter(
        engine, batch_size=5, flush_interval_ms=10, retry_initial_s=0.02, retry_max_s=0.1,
        on_retry=lambda: retried.append(1),
    )
    await writer.start()
    await writer.upsert(row(1))  # the connection is open and the DB is in WAL mode

    locker = sqlite3.connect(db_file, timeout=0, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        futures = [writer.submit_upsert(row(i)) for i in range(2, 13)]
        futures.append(writer.submit_delete([1]))
        await asyncio.sleep(0.6)
        ticking.cancel()
        assert not any(f.done() for f in futures), "nothing can commit while the lock is held"
        assert writer.retries >= 2 and len(retried) == writer.retries  # metrics hook
        assert writer.pending == len(futures)  # all still queued, none dropped
        assert ticks >= 25, f"event loop starved while the DB was locked ({ticks} ticks in 0.6 s)"
    finally:
        locker.execute("COMMIT")
        locker.close()

    await asyncio.wait_for(asyncio.gather(*futures), 5)
    assert set(await stored(engine)) == set(range(2, 13))
    assert writer.failed_ops == 0
    await writer.close()


async def test_close_flushes_queued_rows_and_refuses_new_ones(engine):
    writer = MessageWriter(engine, batch_size=1000, flush_interval_ms=60_000)
    await writer.start()
    futures = [writer.submit_upsert(row(i)) for i in range(1, 6)]
    await writer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert set(await stored(engine)) == {1, 2, 3, 4, 5}
    from bot.db.writer import WriterClosedError

    with pytest.raises(WriterClosedError):
        writer.submit_upsert(row(9))
