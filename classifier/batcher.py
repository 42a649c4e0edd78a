"""`MicroBatcher`: many concurrent `await classify(text)` calls, few well-packed model runs.

How it works: requests wait in a bounded FIFO. One asyncio worker task per ORT session
takes the *oldest* request, waits at most `max_wait_ms` for company (or until a full
token budget is queued), then packs it with the queued requests closest in length
(length bucketing keeps padding small) up to `max_batch_tokens` padded tokens, and runs
`Classifier.predict` in a worker thread. The event loop only does bookkeeping.

Guarantees: every request gets exactly its own result or exception; one failing text
never fails its batch-mates (a failed batch is retried one text at a time); the oldest
request is always in the next batch, so nothing starves; a cancelled caller's request
is skipped; `close()` drains what was queued; `reload()` swaps models without dropping
requests (in-flight batches finish on the old model, each `Prediction` says which).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from classifier.model import BatchStats, Classifier, Prediction

__all__ = ["BatcherStats", "MicroBatcher", "QueueFull"]

MAX_BATCH_SIZE = 256
# How many queued requests are considered when packing one batch (bounds loop work).
PACKING_WINDOW = 1024
CHARS_PER_TOKEN = 4


class QueueFull(asyncio.QueueFull):
    """`try_classify` found the queue at `max_queue`."""


@dataclass(slots=True, eq=False)  # identity matters: two requests may carry equal text
class _Request:
    text: str
    future: asyncio.Future[Prediction]
    tokens: int
    enqueued: float


@dataclass(slots=True)
class BatcherStats:
    """Cumulative counters for metrics."""

    batches: int = 0
    items: int = 0
    model_runs: int = 0
    errors: int = 0
    retried_batches: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0

    @property
    def padding_ratio(self) -> float:
        """Share of the tokens run through the model that were padding."""
        return 1.0 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0


class MicroBatcher:
    """Async front end to a `Classifier`; see the module docstring."""

    def __init__(
        self,
        model: Classifier,
        max_batch_tokens: int = 512,
        max_wait_ms: float = 5,
        max_queue: int = 10_000,
        workers: int | None = None,
    ) -> None:
        if max_queue < 1 or max_batch_tokens < 1 or max_wait_ms < 0:
            raise ValueError("max_queue and max_batch_tokens must be >= 1, max_wait_ms >= 0")
        self._model = model
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self._n_workers = workers or model.sessions
        self._pending: deque[_Request] = deque()
        self._pending_tokens = 0
        self._space: asyncio.Semaphore | None = None
        self._wakeup: asyncio.Event | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._in_flight = 0
        self.stats = BatcherStats()

    @property
    def model(self) -> Classifier:
        """The model new batches run on."""
        return self._model

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a batch (not counting those being inferred)."""
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        """Requests inside batches that are running right now."""
        return self._in_flight

    async def start(self) -> None:
        """Start the workers (idempotent; `classify` also starts them on first use)."""
        if self._closing:
            raise RuntimeError("MicroBatcher is closed")
        if self._workers:
            return
        self._space = asyncio.Semaphore(self.max_queue)
        self._wakeup = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(self._n_workers, thread_name_prefix="classifier")
        self._workers = [
            asyncio.create_task(self._work(), name=f"classifier-batcher-{i}")
            for i in range(self._n_workers)
        ]

    async def classify(self, text: str) -> Prediction:
        """Classify one text; waits (backpressure) while the queue is full."""
        return await self._submit(text, wait_for_space=True)

    async def try_classify(self, text: str) -> Prediction:
        """Like `classify`, but raise `QueueFull` at once instead of waiting for space."""
        return await self._submit(text, wait_for_space=False)

    async def classify_many(
        self, texts: Sequence[str], *, return_exceptions: bool = False
    ) -> list[Prediction]:
        """Classify `texts`; results in input order. Cancelling it cancels every request."""
        if isinstance(texts, str):
            raise TypeError("classify_many() takes a sequence of texts, not a single string")
        for index, text in enumerate(texts):
            _check_text(text, f"texts[{index}]")
        futures: list[asyncio.Future[Prediction]] = []
        try:
            for text in texts:
                futures.append(await self._enqueue(text, wait_for_space=True))
            return await asyncio.gather(*futures, return_exceptions=return_exceptions)
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    async def reload(self, path: str | Path) -> Classifier:
        """Load `path` off the loop and make it serve all new batches; returns the new model.

        A bad directory raises `ModelLoadError` and the current model keeps serving.
        """
        await self.start()
        assert self._reload_lock is not None
        async with self._reload_lock:
            current = self._model
            new = await asyncio.to_thread(
                Classifier.load,
                path,
                threads=current.threads,
                sessions=current.sessions,
                max_batch_tokens=current.max_batch_tokens,
            )
            self._model = new
        return new

    async def close(self) -> None:
        """Stop taking requests, finish everything already queued, then stop the workers."""
        self._closing = True
        if not self._workers:
            return
        assert self._wakeup is not None
        self._wakeup.set()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    async def __aenter__(self) -> MicroBatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # Request side.

    async def _submit(self, text: str, *, wait_for_space: bool) -> Prediction:
        _check_text(text, "text")
        future = await self._enqueue(text, wait_for_space=wait_for_space)
        return await future

    async def _enqueue(self, text: str, *, wait_for_space: bool) -> asyncio.Future[Prediction]:
        if self._closing:
            raise RuntimeError("MicroBatcher is closed")
        await self.start()
        assert self._space is not None and self._wakeup is not None
        if not wait_for_space and self._space.locked():
            raise QueueFull(f"classifier queue is full ({self.max_queue} requests waiting)")
        await self._space.acquire()
        if self._closing:
            self._space.release()
            raise RuntimeError("MicroBatcher is closed")
        tokens = min(self._model.max_length, 3 + len(text) // CHARS_PER_TOKEN)
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(text, future, tokens, time.monotonic()))
        self._pending_tokens += tokens
        self._wakeup.set()
        return future

    # Worker side.

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if batch is None:
                return
            model = self._model  # pinned: a reload mid-batch does not touch this batch
            self._in_flight += len(batch)
            try:
                results, stats, retried = await loop.run_in_executor(
                    self._executor, _predict_isolated, model, [r.text for r in batch]
                )
            except BaseException as exc:  # executor gone, or this task cancelled
                results, stats, retried = [exc] * len(batch), BatchStats(len(batch), 0, 0, 0), True
                if isinstance(exc, asyncio.CancelledError):
                    _deliver(batch, [RuntimeError("MicroBatcher stopped")] * len(batch))
                    raise
            finally:
                self._in_flight -= len(batch)
            self._count(batch, results, stats, retried)
            _deliver(batch, results)

    async def _next_batch(self) -> list[_Request] | None:
        """Wait for work; return the oldest request plus length-matched company."""
        assert self._wakeup is not None
        while True:
            self._drop_cancelled_head()
            if not self._pending:
                if self._closing:
                    return None
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = self._pending[0].enqueued + self.max_wait
            while (
                self._pending
                and not self._closing
                and self._pending_tokens < self.max_batch_tokens
                and len(self._pending) < MAX_BATCH_SIZE
                and (remaining := deadline - time.monotonic()) > 0
            ):
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                self._drop_cancelled_head()
            if self._pending:  # else: callers gave up, or another worker took it all
                return self._pack()

    def _pack(self) -> list[_Request]:
        """Take the oldest request and the queued requests nearest to it in length."""
        assert self._space is not None
        window = [self._pending.popleft() for _ in range(min(PACKING_WINDOW, len(self._pending)))]
        live = [r for r in window if not r.future.done()]
        for request in window:
            self._pending_tokens -= request.tokens
        dropped = len(window) - len(live)
        anchor = live[0]
        ranked = sorted(live, key=lambda r: r.tokens)
        lo = hi = ranked.index(anchor)
        width = anchor.tokens
        while hi - lo + 1 < MAX_BATCH_SIZE:
            left = ranked[lo - 1] if lo > 0 else None
            right = ranked[hi + 1] if hi + 1 < len(ranked) else None
            # Prefer the neighbour closer in length (ranked is sorted, so that is the cheaper one).
            if left is not None and (right is None or width - left.tokens <= right.tokens - width):
                if width * (hi - lo + 2) > self.max_batch_tokens:
                    break
                lo -= 1
            elif right is not None:
                if right.tokens * (hi - lo + 2) > self.max_batch_tokens:
                    break
                hi += 1
                width = right.tokens
            else:
                break
        batch = ranked[lo : hi + 1]
        chosen = {id(r) for r in batch}
        rest = [r for r in live if id(r) not in chosen]
        self._pending.extendleft(reversed(rest))  # back at the front, in arrival order
        self._pending_tokens += sum(r.tokens for r in rest)
        for _ in range(len(batch) + dropped):
            self._space.release()
        return batch

    def _drop_cancelled_head(self) -> None:
        assert self._space is not None
        while self._pending and self._pending[0].future.done():
            self._pending_tokens -= self._pending.popleft().tokens
            self._space.release()

    def _count(
        self,
        batch: list[_Request],
        results: list[Prediction | BaseException],
        stats: BatchStats,
        retried: bool,
    ) -> None:
        self.stats.batches += 1
        self.stats.items += len(batch)
        self.stats.model_runs += stats.runs
        self.stats.real_tokens += stats.real_tokens
        self.stats.padded_tokens += stats.padded_tokens
        self.stats.retried_batches += int(retried)
        self.stats.errors += sum(isinstance(r, BaseException) for r in results)


def _predict_isolated(
    model: Classifier, texts: list[str]
) -> tuple[list[Prediction | BaseException], BatchStats, bool]:
    """Run a batch; if it fails, run each text alone so only the bad ones get the error."""
    try:
        predictions, stats = model.predict_with_stats(texts)
        return list(predictions), stats, False
    except Exception:
        results: list[Prediction | BaseException] = []
        runs = real = padded = 0
        for text in texts:
            try:
                (prediction,), single = model.predict_with_stats([text])
            except Exception as exc:
                results.append(exc)
                continue
            results.append(prediction)
            runs, real, padded = (
                runs + single.runs,
                real + single.real_tokens,
                padded + single.padded_tokens,
            )
        return results, BatchStats(len(texts), runs, real, padded), True


def _deliver(batch: list[_Request], results: Sequence[Prediction | BaseException]) -> None:
    for request, result in zip(batch, results, strict=True):
        if request.future.done():  # the caller cancelled
            continue
        if isinstance(result, BaseException):
            request.future.set_exception(result)
        else:
            request.future.set_result(result)


def _check_text(text: object, what: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be str, got {type(text).__name__}")
