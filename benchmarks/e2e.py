"""End to end: the real bot from `create_bot`, fed through simcord's in-memory gateway, into SQLite.

One fresh process (so its peak RSS is the bot's, plus simcord's small in-memory Discord):

1. `create_bot(settings)` with every extension, a temp SQLite file migrated to head, the
   model directory under test, and the classifier thread layout of the classifier run
   (everything else: the bot's defaults). `prepare()`, then simcord attaches (READY).
2. Full load: a closed loop keeps `window` messages in flight (received, not yet stored);
   a new message is injected as soon as one is stored. msgs/s = stored rows / time from
   the first receipt to the last stored row. A ticker coroutine (sleep 5 ms, record the
   overshoot) measures event-loop lag the whole time.
3. 50% load: Poisson arrivals at half the full-load rate; latency = stored time minus the
   *scheduled* arrival (a stalled loop delays injection and counts against the bot).
4. Rows in `messages` are counted after shutdown and must equal the messages sent.

"Receipt" is the moment simcord hands the MESSAGE_CREATE payload to discord.py's parser;
"stored" is when the bot dispatches `message_classified`, which the pipeline does only
after the writer committed the row.

simcord caveat: code running inside bot-owned tasks sees simcord's virtual
`time.monotonic()`, so a request's enqueue time in the MicroBatcher is virtual while its
worker compares it with real time: the `max_wait_ms` coalescing wait is skipped in this
harness (batches still form while a model run is in progress).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.measure import (
    Progress,
    cpu_seconds,
    current_rss_mb,
    cycle,
    job_main,
    latency_summary,
    peak_rss_mb,
    poisson_arrivals,
)
from benchmarks.workload import Workload

TICK_S = 0.005


class _Recorder:
    """Stored-time per message id, and a wake-up for the driver."""

    def __init__(self) -> None:
        self.stored: dict[int, float] = {}
        self.changed = asyncio.Event()

    async def on_message_classified(self, message: Any, prediction: Any, is_edit: bool) -> None:
        self.stored.setdefault(message.id, time.perf_counter())
        self.changed.set()


class _Ticker:
    """Measures event-loop lag: how late a 5 ms sleep wakes up."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (time, lag)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            self.samples.append((now, max(0.0, now - started - TICK_S)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def between(self, start: float, end: float) -> list[float]:
        return [lag for t, lag in self.samples if start <= t <= end]


def _settings(job: dict[str, Any], db_path: Path) -> Any:
    from bot.settings import Settings

    values: dict[str, Any] = {
        "discord_token": None,
        "database_url": f"sqlite+aiosqlite:///{db_path}",
        "model_dir": Path(job["model_dir"]),
        "metrics_port": 0,
        "owner_ids": [],
        "log_level": "WARNING",
        "model_sessions": job["sessions"],
        "model_threads": job["session_threads"],
    }
    values.update(job.get("settings", {}))
    return Settings(_env_file=None, **values)


async def run_e2e(job: dict[str, Any]) -> dict[str, Any]:
    import simcord

    from bot.app import create_bot

    show = not job.get("quiet", False)
    texts = Workload.load(Path(job["workload"])).texts
    latency_texts = Workload.load(Path(job["latency_workload"])).texts
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    settings = _settings(job, tmp / "bench.db")
    bot = create_bot(settings)
    await bot.prepare()
    from benchmarks.latency import _Profile

    profile = _Profile(bot.classifier)  # times predict/ORT/tokenizer in the worker threads
    env = simcord.Env(bot, check_errors=False, settle_timeout=30.0)
    await env.start()
    guild = env.create_guild("Bench")
    channel = guild.create_text_channel("general")
    authors = [guild.add_member(env.create_user(f"user{i}")) for i in range(16)]
    await env.settle()
    recorder = _Recorder()
    bot.add_listener(recorder.on_message_classified, "on_message_classified")
    receipts: dict[int, float] = {}
    sent = 0
    gateway_cpu = 0.0  # loop-thread CPU spent inside simcord + discord.py's MESSAGE_CREATE parser

    def inject(text: str, at: float | None = None) -> None:
        nonlocal sent, gateway_cpu
        received = time.perf_counter() if at is None else at
        cpu_start = time.thread_time()
        message = env.backend.create_message(channel.id, authors[sent % len(authors)].id, text)
        gateway_cpu += time.thread_time() - cpu_start
        receipts[message.id] = received
        sent += 1

    async def wait_stored(count: int, limit_s: float) -> None:
        deadline = time.perf_counter() + limit_s
        while len(recorder.stored) < count:
            recorder.changed.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"only {len(recorder.stored)} of {count} rows stored")
            try:
                await asyncio.wait_for(recorder.changed.wait(), remaining)
            except TimeoutError:
                pass

    rss_ready = current_rss_mb()
    ticker = _Ticker()
    ticker.start()
    # Warm-up (first batches, first SQLite transactions).
    for text in texts[:16]:
        inject(text)
    await wait_stored(16, job.get("timeout_s", 120))

    # Full load: closed loop with `window` messages in flight.
    n, window = job["messages"], job.get("window", 512)
    full = cycle(list(texts[16:]), n)
    stats0 = _batcher_stats(bot)
    bar = Progress(n, "e2e: full load", enabled=show)
    base_stored = len(recorder.stored)
    prof0, cpu0, loop_cpu0 = profile.snapshot(), cpu_seconds(), time.thread_time()
    gateway_cpu = 0.0
    first = time.perf_counter()
    index = 0
    while index < n:
        in_flight = sent - len(recorder.stored)
        while index < n and in_flight < window:
            inject(full[index])
            index += 1
            in_flight += 1
            await asyncio.sleep(0)  # a gateway delivers events one by one, not in a burst
        recorder.changed.clear()
        await asyncio.wait_for(recorder.changed.wait(), job.get("timeout_s", 120))
        bar.update(len(recorder.stored) - base_stored - bar.done)
    await wait_stored(sent, job.get("timeout_s", 120))
    cpu, loop_cpu = cpu_seconds() - cpu0, time.thread_time() - loop_cpu0
    full_gateway_cpu = gateway_cpu
    prof = {k: v - prof0[k] for k, v in profile.snapshot().items()}
    bar.update(n - bar.done)
    bar.close()
    full_ids = list(receipts)[16:]
    last = max(recorder.stored[i] for i in full_ids)
    full_elapsed = last - first
    full_rate = n / full_elapsed
    full_latencies = [recorder.stored[i] - receipts[i] for i in full_ids]
    lag_full = ticker.between(first, last)
    full_stats = _delta(_batcher_stats(bot), stats0)

    # 50% load: Poisson arrivals, latency from the scheduled arrival.
    arrivals = poisson_arrivals(0.5 * full_rate, job["latency_s"], job["seed"], job["max_latency_messages"])
    sample = cycle(list(latency_texts), len(arrivals))
    bar = Progress(len(arrivals), "e2e: latency @50%", enabled=show)
    before = set(receipts)
    stats0 = _batcher_stats(bot)
    base = time.perf_counter()
    for arrival, text in zip(arrivals, sample, strict=True):
        delay = arrival - (time.perf_counter() - base)
        if delay > 0:
            await asyncio.sleep(delay)
        inject(text, at=base + float(arrival))
        bar.update()
    await wait_stored(sent, job.get("timeout_s", 120))
    bar.close()
    half_end = time.perf_counter()
    half_ids = [i for i in receipts if i not in before]
    half_latencies = [recorder.stored[i] - receipts[i] for i in half_ids]
    lag_half = ticker.between(base, half_end)
    half_stats = _delta(_batcher_stats(bot), stats0)
    await ticker.stop()

    errors = len(env.errors)
    await env.shutdown()
    await bot.shutdown_services()
    peak = peak_rss_mb()
    rows = _count_rows(tmp / "bench.db")
    return {
        "messages_sent": sent,
        "stored_rows": rows,
        "bot_errors": errors,
        "settings": {
            "model_sessions": settings.model_sessions,
            "model_threads": settings.model_threads,
            "max_batch_tokens": settings.max_batch_tokens,
            "max_wait_ms": settings.max_wait_ms,
            "db_batch_size": settings.db_batch_size,
            "db_flush_interval_ms": settings.db_flush_interval_ms,
        },
        "full_load": {
            "messages": n,
            "window": window,
            "seconds": round(full_elapsed, 3),
            "msgs_per_s": round(full_rate, 2),
            "receipt_to_stored": latency_summary(full_latencies),
            "loop_lag": latency_summary(lag_full),
            "mean_batch_messages": round(full_stats["items"] / max(1, full_stats["batches"]), 1),
            # CPU split: the event-loop thread (bot handlers, discord.py parsing, SQLAlchemy,
            # and simcord's fake gateway) vs the classifier's worker threads.
            "cpu": {
                "process_cores": round(cpu / full_elapsed, 2),
                "loop_thread_cores": round(loop_cpu / full_elapsed, 2),
                "loop_cpu_us_per_msg": round(loop_cpu / n * 1e6, 1),
                "simulated_gateway_cpu_us_per_msg": round(full_gateway_cpu / n * 1e6, 1),
                "bot_loop_cpu_us_per_msg": round((loop_cpu - full_gateway_cpu) / n * 1e6, 1),
                "predict_wall_s": round(prof["predict_s"], 3),
                "ort_wall_s": round(prof["ort_s"], 3),
                "predict_us_per_msg": round(prof["predict_s"] / n * 1e6, 1),
            },
        },
        "half_load": {
            "arrival_rate": round(0.5 * full_rate, 2),
            "seconds": job["latency_s"],
            "receipt_to_stored": latency_summary(half_latencies),
            "loop_lag": latency_summary(lag_half),
            "mean_batch_messages": round(half_stats["items"] / max(1, half_stats["batches"]), 2),
        },
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": peak,
    }


def _batcher_stats(bot: Any) -> dict[str, int]:
    s = bot.batcher.stats
    return {"batches": s.batches, "items": s.items}


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def _count_rows(db_path: Path) -> int:
    with sqlite3.connect(db_path) as connection:
        return int(connection.execute("SELECT count(*) FROM messages").fetchone()[0])


def _job(job: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("discord").setLevel(logging.ERROR)  # no voice / intents chatter
    return asyncio.run(run_e2e(job))


if __name__ == "__main__":
    raise SystemExit(job_main(None, _job))
