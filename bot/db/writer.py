"""Batched, idempotent writes of message rows, with retry when SQLite is locked.

Why a writer at all: one transaction per message would serialize the bot on fsyncs. Rows
and deletes are queued in arrival order and applied together every `batch_size` operations
or `flush_interval_ms`, whichever comes first. Upserts (`INSERT ... ON CONFLICT(message_id)
DO UPDATE`) make replays, backfills and edits idempotent.

A locked or failing database never loses queued work: the batch stays queued and is retried
with exponential backoff (the wait is an `asyncio.sleep`, the SQL runs in aiosqlite's thread,
so the event loop keeps serving). Callers that need durability await the returned future.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.models import MessageRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MessageMeta:
    """Where and when a message was written: the ids and times every stored message keeps."""

    message_id: int
    guild_id: int
    channel_id: int
    parent_id: int | None
    author_id: int
    reply_to_id: int | None
    created_at: datetime
    edited_at: datetime | None

    def meta(self) -> dict[str, Any]:
        """Just the `MessageMeta` fields, to build another record about the same message."""
        return {f.name: getattr(self, f.name) for f in fields(MessageMeta)}


@dataclass(frozen=True, slots=True)
class MessageRow(MessageMeta):
    """Exactly the columns of `messages` (no text: there is nowhere to put it)."""

    label: str | None
    confidence: float | None
    scores: dict[str, float] | None
    uncertain: bool
    model_version: str | None
    attachment_only: bool
    classified_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_UPDATE_COLUMNS = [f.name for f in fields(MessageRow) if f.name != "message_id"]


@dataclass(slots=True)
class _Op:
    kind: str  # "upsert" | "delete"
    rows: list[MessageRow] | None
    ids: list[int] | None
    done: asyncio.Future[None]


class WriterClosedError(RuntimeError):
    """The writer was closed; nothing more can be queued."""


def is_transient(exc: BaseException) -> bool:
    """Locked/busy databases and I/O hiccups are worth retrying; constraint errors are not."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError)


class MessageWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        batch_size: int = 200,
        flush_interval_ms: float = 250,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 5.0,
        observe_latency: Callable[[float], None] | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._batch_size = max(1, batch_size)
        self._interval = max(0.001, flush_interval_ms / 1000)
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._observe_latency = observe_latency
        self._on_retry = on_retry
        self._ops: list[_Op] = []
        self._wakeup: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.retries = 0  # how many times a batch was retried (metrics, tests)
        self.failed_ops = 0  # ops that failed permanently (bad rows), never silently

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._task is not None:
            return
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="message-writer")

    async def close(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        """Flush everything queued, then stop. Rows still unwritten after `timeout` are logged."""
        if self._task is None:
            return
        self._closing = True
        self._poke(full=True)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            pending = self.pending
            log.error("writer: database still unavailable at shutdown; %d queued op(s) lost", pending)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    @property
    def pending(self) -> int:
        """Queued operations not yet committed."""
        return len(self._ops)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ------------------------------------------------------------------ queueing
    def submit_upsert(self, rows: MessageRow | Sequence[MessageRow]) -> asyncio.Future[None]:
        """Queue row(s); the future resolves once they are committed."""
        batch = [rows] if isinstance(rows, MessageRow) else list(rows)
        return self._enqueue(_Op("upsert", batch, None, self._future()))

    def submit_delete(self, message_ids: Iterable[int]) -> asyncio.Future[None]:
        ids = [int(message_id) for message_id in message_ids]
        return self._enqueue(_Op("delete", None, ids, self._future()))

    async def upsert(self, rows: MessageRow | Sequence[MessageRow]) -> None:
        await self.submit_upsert(rows)

    async def delete(self, message_ids: Iterable[int]) -> None:
        await self.submit_delete(message_ids)

    async def flush(self) -> None:
        """Wait until everything queued before this call is committed."""
        if not self._ops:
            return
        marker = self._ops[-1].done
        self._poke(full=True)
        await asyncio.wait([marker])  # a rejected op's error belongs to its submitter

    # ------------------------------------------------------------------ internals
    def _future(self) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()

    def _enqueue(self, op: _Op) -> asyncio.Future[None]:
        if self._closing or self._task is None:
            raise WriterClosedError("the message writer is not running")
        if (op.rows is not None and not op.rows) or (op.ids is not None and not op.ids):
            op.done.set_result(None)
            return op.done
        self._ops.append(op)
        self._poke(full=len(self._ops) >= self._batch_size)
        return op.done

    def _poke(self, *, full: bool) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
        if full and self._full is not None:
            self._full.set()

    async def _run(self) -> None:
        assert self._wakeup is not None and self._full is not None
        while True:
            if not self._ops:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if not self._closing and len(self._ops) < self._batch_size and not self._full.is_set():
                try:
                    await asyncio.wait_for(self._full.wait(), self._interval)
                except TimeoutError:
                    pass
            self._full.clear()
            batch = self._ops[: self._batch_size * 4]
            await self._commit_with_retry(batch)
            del self._ops[: len(batch)]

    async def _commit_with_retry(self, batch: list[_Op]) -> None:
        delay = self._retry_initial
        while True:
            started = time.perf_counter()
            try:
                await self._apply(batch)
            except Exception as exc:
                if is_transient(exc):
                    self._count_retry()
                    log.warning(
                        "writer: database busy/unavailable (%s); %d op(s) kept queued, retry in %.2fs",
                        type(exc.__cause__ or exc).__name__,
                        len(self._ops),
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._retry_max)
                    continue
                await self._apply_one_by_one(batch)
                return
            if self._observe_latency is not None:
                self._observe_latency(time.perf_counter() - started)
            for op in batch:
                if not op.done.done():
                    op.done.set_result(None)
            return

    def _count_retry(self) -> None:
        self.retries += 1
        if self._on_retry is not None:
            self._on_retry()

    async def _apply_one_by_one(self, batch: list[_Op]) -> None:
        """A batch failed for a non-transient reason: isolate the bad op, keep the rest."""
        for op in batch:
            delay = self._retry_initial
            while True:
                try:
                    await self._apply([op])
                except Exception as exc:
                    if is_transient(exc):
                        self._count_retry()
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self._retry_max)
                        continue
                    self.failed_ops += 1
                    log.error("writer: dropping an operation the database rejects: %s", exc)
                    if not op.done.done():
                        op.done.set_exception(exc)
                        op.done.exception()  # mark retrieved: the caller may have gone away
                    break
                if not op.done.done():
                    op.done.set_result(None)
                break

    async def _apply(self, batch: list[_Op]) -> None:
        """Apply ops in order inside one transaction; consecutive ops of a kind are merged."""
        async with self._engine.begin() as connection:
            for kind, group in _runs(batch):
                if kind == "upsert":
                    latest: dict[int, dict[str, Any]] = {}
                    for op in group:
                        for row in op.rows or ():
                            latest[row.message_id] = row.as_dict()
                    if latest:
                        # executemany with one cached statement: compiled once per process,
                        # and the per-row work runs in aiosqlite's thread, not on the event loop.
                        await connection.execute(_upsert_statement(), list(latest.values()))
                else:
                    ids = sorted({message_id for op in group for message_id in op.ids or ()})
                    for start in range(0, len(ids), 500):
                        await connection.execute(
                            delete(MessageRecord).where(
                                MessageRecord.message_id.in_(ids[start : start + 500])
                            )
                        )


@functools.cache
def _upsert_statement() -> Any:
    """INSERT ... ON CONFLICT(message_id) DO UPDATE: a re-classified message replaces its row."""
    statement = insert(MessageRecord)
    return statement.on_conflict_do_update(
        index_elements=[MessageRecord.message_id],
        set_={name: statement.excluded[name] for name in _UPDATE_COLUMNS},
    )


def _runs(batch: list[_Op]) -> Iterable[tuple[str, list[_Op]]]:
    """Group consecutive ops of the same kind, preserving order between kinds."""
    group: list[_Op] = []
    for op in batch:
        if group and group[-1].kind != op.kind:
            yield group[0].kind, group
            group = []
        group.append(op)
    if group:
        yield group[0].kind, group
