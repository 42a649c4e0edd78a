"""`MicroBatcher`: concurrency, ordering, cancellation, error routing, draining, hot reload."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from classifier import Classifier, MicroBatcher, ModelLoadError, QueueFull
from classifier.model import BatchStats, Prediction
from training.tiny import build_tiny_model

TEXTS = [
    f"message {i}: " + "word " * (i % 37) + ("why?" if i % 3 else "thanks!") for i in range(300)
]


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> Classifier:
    return Classifier.load(tiny_model_dir, sessions=2)


@pytest.fixture(scope="module")
def expected(model: Classifier) -> dict[str, Prediction]:
    return dict(zip(TEXTS, model.predict(TEXTS), strict=True))


@pytest.fixture(scope="module")
def second_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-seed1") / "model", seed=1)


class _Exploding(Classifier):
    """Fails any batch that contains "BOOM", like a model choking on one bad input."""

    def predict_with_stats(self, texts):
        if any("BOOM" in t for t in texts):
            raise RuntimeError("model choked on BOOM")
        return super().predict_with_stats(texts)


class _Slow(Classifier):
    """Holds each batch long enough for the queue to fill up behind it."""

    threads_seen: set[str]

    def predict_with_stats(self, texts):
        self.threads_seen.add(threading.current_thread().name)
        time.sleep(0.02)
        return super().predict_with_stats(texts)


def _same(a: Prediction, b: Prediction) -> bool:
    return a.label == b.label and all(abs(a.scores[k] - b.scores[k]) < 1e-5 for k in a.scores)


async def test_hundreds_of_concurrent_callers_get_their_own_result(
    model: Classifier, expected: dict[str, Prediction]
) -> None:
    async with MicroBatcher(model, max_batch_tokens=1024, max_wait_ms=5) as batcher:
        results = await asyncio.gather(*(batcher.classify(t) for t in TEXTS))
        assert all(_same(r, expected[t]) for t, r in zip(TEXTS, results, strict=True))
        stats = batcher.stats
        assert stats.items == len(TEXTS)
        assert 1 < stats.batches < len(TEXTS)  # really batched, and within the token budget
        assert 0.0 <= stats.padding_ratio < 0.5
        assert batcher.queue_depth == 0 and batcher.in_flight == 0


async def test_classify_many_keeps_input_order(
    model: Classifier, expected: dict[str, Prediction]
) -> None:
    async with MicroBatcher(model) as batcher:
        shuffled = TEXTS[::-1][:150] + TEXTS[:150]
        results = await batcher.classify_many(shuffled)
        assert [r.label for r in results] == [expected[t].label for t in shuffled]
        assert await batcher.classify_many([]) == []


async def test_inference_runs_off_the_event_loop(tiny_model_dir: Path) -> None:
    slow = _Slow.load(tiny_model_dir, sessions=2)
    slow.threads_seen = set()
    async with MicroBatcher(slow) as batcher:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        ticking = asyncio.create_task(ticker())
        await batcher.classify_many(TEXTS[:40])
        ticking.cancel()
    assert slow.threads_seen and threading.main_thread().name not in slow.threads_seen
    assert ticks > 0  # the loop kept running while batches were inferred


async def test_bad_text_fails_only_its_own_caller(tiny_model_dir: Path, expected) -> None:
    exploding = _Exploding.load(tiny_model_dir, sessions=2)
    texts = [*TEXTS[:30], "BOOM goes this one", *TEXTS[30:60]]
    async with MicroBatcher(exploding, max_wait_ms=20) as batcher:
        results = await asyncio.gather(
            *(batcher.classify(t) for t in texts), return_exceptions=True
        )
        assert batcher.stats.retried_batches >= 1 and batcher.stats.errors == 1
    for text, result in zip(texts, results, strict=True):
        if text.startswith("BOOM"):
            assert isinstance(result, RuntimeError) and "BOOM" in str(result)
        else:
            assert isinstance(result, Prediction) and _same(result, expected[text])


async def test_non_string_is_rejected_before_queueing(model: Classifier) -> None:
    async with MicroBatcher(model) as batcher:
        with pytest.raises(TypeError, match="text must be str, got int"):
            await batcher.classify(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"texts\[1\] must be str"):
            await batcher.classify_many(["ok", None])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="not a single string"):
            await batcher.classify_many("oops")
        assert batcher.queue_depth == 0
        assert (await batcher.classify("")).label in model.labels


async def test_cancelled_callers_do_not_disturb_the_rest(
    tiny_model_dir: Path, expected: dict[str, Prediction]
) -> None:
    slow = _Slow.load(tiny_model_dir, sessions=1)
    slow.threads_seen = set()
    async with MicroBatcher(slow, max_batch_tokens=256, max_wait_ms=1) as batcher:
        tasks = [asyncio.create_task(batcher.classify(t)) for t in TEXTS[:120]]
        await asyncio.sleep(0.01)  # some batches are running, most requests still queued
        for task in tasks[::2]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for i, (text, result) in enumerate(zip(TEXTS[:120], results, strict=True)):
            if i % 2:
                assert _same(result, expected[text])
            else:
                assert isinstance(result, asyncio.CancelledError | Prediction)
        assert any(isinstance(r, asyncio.CancelledError) for r in results)
        assert batcher.stats.items < 120  # cancelled requests were skipped, not inferred
        assert batcher.queue_depth == 0
        assert _same(await batcher.classify(TEXTS[5]), expected[TEXTS[5]])


async def test_full_queue_applies_backpressure(tiny_model_dir: Path) -> None:
    slow = _Slow.load(tiny_model_dir, sessions=1)
    slow.threads_seen = set()
    async with MicroBatcher(slow, max_batch_tokens=64, max_queue=5, max_wait_ms=0) as batcher:
        depths: list[int] = []

        async def watch() -> None:
            while True:
                depths.append(batcher.queue_depth)
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        tasks = [asyncio.create_task(batcher.classify(t)) for t in TEXTS[:40]]
        await asyncio.sleep(0.005)
        with pytest.raises(QueueFull):
            await batcher.try_classify("no room")
        results = await asyncio.gather(*tasks)
        watcher.cancel()
        assert len(results) == 40 and all(isinstance(r, Prediction) for r in results)
        assert max(depths) <= 5
        assert isinstance(await batcher.try_classify("room again"), Prediction)


async def test_close_drains_queued_work_then_refuses(model: Classifier) -> None:
    batcher = MicroBatcher(model, max_wait_ms=50)
    await batcher.start()
    tasks = [asyncio.create_task(batcher.classify(t)) for t in TEXTS[:100]]
    await asyncio.sleep(0)  # all enqueued, none finished
    assert batcher.queue_depth > 0
    await batcher.close()
    assert all(t.done() and isinstance(t.result(), Prediction) for t in tasks)
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.classify("too late")


async def test_two_sessions_run_batches_side_by_side(tiny_model_dir: Path) -> None:
    model = Classifier.load(tiny_model_dir, sessions=2)
    barrier = threading.Barrier(2, timeout=10)
    original = model.predict_with_stats

    def meet_then_predict(texts: list[str]) -> tuple[list[Prediction], BatchStats]:
        barrier.wait()  # raises BrokenBarrierError unless two batches run at the same time
        return original(texts)

    model.predict_with_stats = meet_then_predict  # type: ignore[method-assign]
    async with MicroBatcher(model, max_batch_tokens=1, max_wait_ms=0) as batcher:
        results = await asyncio.gather(batcher.classify("one"), batcher.classify("two"))
    assert all(isinstance(r, Prediction) for r in results)
    assert batcher.stats.batches == 2 and batcher.stats.retried_batches == 0


async def test_reload_under_load_switches_versions_without_dropping(
    model: Classifier, second_model_dir: Path
) -> None:
    old_version = model.version
    async with MicroBatcher(model, max_batch_tokens=512, max_wait_ms=2) as batcher:
        first_wave = [asyncio.create_task(batcher.classify(t)) for t in TEXTS]
        await asyncio.sleep(0.005)
        new_model = await batcher.reload(second_model_dir)
        second_wave = await asyncio.gather(*(batcher.classify(t) for t in TEXTS[:50]))
        first = await asyncio.gather(*first_wave)

        assert new_model.version == "tiny-distilbert-single-seed1" != old_version
        assert batcher.model is new_model
        assert len(first) == len(TEXTS) and all(isinstance(p, Prediction) for p in first)
        # The first batch was dispatched (old model pinned) before reload began.
        assert old_version in {p.model_version for p in first}
        assert {p.model_version for p in first} <= {old_version, new_model.version}
        assert {p.model_version for p in second_wave} == {new_model.version}
        assert batcher.stats.items == len(TEXTS) + 50

        with pytest.raises(ModelLoadError):
            await batcher.reload(second_model_dir / "missing")
        assert batcher.model is new_model  # a failed reload keeps the current model serving
        assert (await batcher.classify("still up")).model_version == new_model.version


async def test_light_load_is_not_held_for_a_full_batch(model: Classifier) -> None:
    async with MicroBatcher(model, max_batch_tokens=100_000, max_wait_ms=5) as batcher:
        for text in TEXTS[:5]:
            await batcher.classify(text)
        assert batcher.stats.batches == 5  # each lone request left after max_wait
