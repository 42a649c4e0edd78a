"""One variant in one fresh process: max throughput, latency at 50% load, tokenizer cost, RSS.

Runners (`job["runner"]`):

- `torch`    - PyTorch eager fp32, batch 1, `torch.set_num_threads(threads)`, the
               transformers fast tokenizer (what most projects ship).
- `ort_fp32` - onnxruntime on the plain fp32 export, batch 1, one session with `threads`
               intra-op threads, plain `tokenizers` like the classifier.
- `project`  - the shipped int8 `model.onnx` through `classifier.Classifier` (S sessions x T
               threads) and `classifier.MicroBatcher` (its defaults, the bot's defaults).

Method. Max throughput: batch-1 runners classify messages back to back (time-boxed);
the project path gets all messages at once (a backlog, so the batcher can pack), sized
from a short probe to run about `target_s`. Latency: Poisson arrivals at 50% of that
measured rate; each message's latency is completion minus its *scheduled* arrival, so a
stall delays every message behind it (no coordinated omission). Batch-1 runners serve
arrivals one at a time in arrival order (a single-worker queue), like a bot awaiting one
`predict` per message. Every message goes through `classifier.normalize` first.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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

WARMUP = 8


# ----------------------------------------------------------------------------- tokenizers
def tokenizer_cost(model_dir: Path, texts: Sequence[str], *, transformers_too: bool) -> dict[str, Any]:
    """µs per message: normalize, plain `tokenizers` one-by-one and batched, HF wrapper."""
    from classifier.model_dir import open_tokenizer, read_model_dir
    from classifier.preprocess import normalize

    tok = open_tokenizer(read_model_dir(model_dir))
    texts = list(texts)
    n = max(1, len(texts))
    out: dict[str, Any] = {"n": len(texts)}

    started = time.perf_counter()
    cleaned = [normalize(t) for t in texts]
    out["normalize_us"] = round((time.perf_counter() - started) / n * 1e6, 2)

    started = time.perf_counter()
    for text in cleaned:
        tok.encode(text)
    out["tokenizers_single_us"] = round((time.perf_counter() - started) / n * 1e6, 2)

    started = time.perf_counter()
    for i in range(0, len(cleaned), 64):
        tok.encode_batch(cleaned[i : i + 64])
    out["tokenizers_batch64_us"] = round((time.perf_counter() - started) / n * 1e6, 2)

    if transformers_too:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
        max_length = read_model_dir(model_dir).max_length
        started = time.perf_counter()
        for text in cleaned:
            hf(text, truncation=True, max_length=max_length, return_tensors="pt")
        out["transformers_single_us"] = round((time.perf_counter() - started) / n * 1e6, 2)
    return out


# ----------------------------------------------------------------------------- batch-1 runners
class _Split:
    """Accumulates tokenizer vs model time of a batch-1 runner."""

    def __init__(self) -> None:
        self.tokenize_s = 0.0
        self.model_s = 0.0

    def reset(self) -> None:
        self.tokenize_s = self.model_s = 0.0


def torch_predictor(job: dict[str, Any], split: _Split) -> Callable[[str], Any]:
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from classifier.preprocess import normalize

    hf_logging.set_verbosity_error()
    torch.set_num_threads(job["threads"])
    model_dir = job["model_dir"]
    tokenizer = AutoTokenizer.from_pretrained(model_dir, use_fast=True)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(model_dir))
    model.eval()
    max_length = job["max_length"]

    def predict(text: str) -> Any:
        t0 = time.perf_counter()
        inputs = tokenizer(normalize(text), truncation=True, max_length=max_length, return_tensors="pt")
        t1 = time.perf_counter()
        with torch.inference_mode():
            probs = torch.softmax(model(**inputs).logits, dim=-1)[0].tolist()
        split.tokenize_s += t1 - t0
        split.model_s += time.perf_counter() - t1
        return probs

    return predict


def ort_fp32_predictor(job: dict[str, Any], split: _Split) -> Callable[[str], Any]:
    import onnxruntime as ort

    from classifier.model_dir import open_tokenizer, read_model_dir
    from classifier.preprocess import normalize

    options = ort.SessionOptions()  # plain defaults, except the thread count
    options.intra_op_num_threads = job["threads"]
    session = ort.InferenceSession(job["fp32_onnx"], options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    tokenizer = open_tokenizer(read_model_dir(job["model_dir"]))

    def predict(text: str) -> Any:
        t0 = time.perf_counter()
        ids = np.asarray([tokenizer.encode(normalize(text)).ids], dtype=np.int64)
        feed = {"input_ids": ids}
        if "attention_mask" in names:
            feed["attention_mask"] = np.ones_like(ids)
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        t1 = time.perf_counter()
        logits = session.run(["logits"], feed)[0][0]
        e = np.exp(logits - logits.max())
        split.tokenize_s += t1 - t0
        split.model_s += time.perf_counter() - t1
        return e / e.sum()

    return predict


def _half_load_schedule(
    rate: float, latency_texts: Sequence[str], job: dict[str, Any], show: bool
) -> tuple[Any, list[str], Progress]:
    """Poisson arrivals at half the measured max rate, the texts they carry, a progress bar."""
    arrivals = poisson_arrivals(0.5 * rate, job["latency_s"], job["seed"], job["max_latency_messages"])
    sample = cycle(list(latency_texts), len(arrivals))
    return arrivals, sample, Progress(len(arrivals), f"{job['label']}: latency @50%", enabled=show)


def _half_load_result(
    rate: float,
    arrivals: Sequence[float],
    latency_texts: Sequence[str],
    job: dict[str, Any],
    latencies: list[float],
    **extra: Any,
) -> dict[str, Any]:
    """The latency section of a report: the schedule, any extras, then the percentiles."""
    return {
        "arrival_rate": round(0.5 * rate, 2),
        "seconds": job["latency_s"],
        "repeated_texts": max(0, len(arrivals) - len(latency_texts)),
        **extra,
        **latency_summary(latencies),
    }


def run_batch1(
    predict: Callable[[str], Any],
    split: _Split,
    texts: Sequence[str],
    latency_texts: Sequence[str],
    job: dict[str, Any],
) -> dict[str, Any]:
    show = not job.get("quiet", False)
    for text in texts[:WARMUP]:
        predict(text)
    split.reset()
    # Max throughput: back to back, time-boxed.
    budget, max_n = job["time_box_s"], job["max_messages"]
    bar = Progress(max_n, f"{job['label']}: throughput", enabled=show)
    n, cpu0, start = 0, cpu_seconds(), time.perf_counter()
    while n < max_n and (n < job.get("min_messages", 20) or time.perf_counter() - start < budget):
        predict(texts[(WARMUP + n) % len(texts)])
        n += 1
        bar.update()
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    bar.close()
    rate = n / elapsed
    throughput = {
        "messages": n,
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(rate, 2),
        "cpu_cores_used": round(cpu / elapsed, 2),
        "tokenize_share": round(split.tokenize_s / elapsed, 3),
        "model_share": round(split.model_s / elapsed, 3),
    }
    # Latency at 50% load: one worker serves Poisson arrivals in order.
    arrivals, sample, bar = _half_load_schedule(rate, latency_texts, job, show)
    latencies: list[float] = []
    base = time.perf_counter()
    for arrival, text in zip(arrivals, sample, strict=True):
        now = time.perf_counter() - base
        if now < arrival:
            time.sleep(arrival - now)
        predict(text)
        latencies.append(time.perf_counter() - base - arrival)
        bar.update()
    bar.close()
    return {
        "throughput": throughput,
        "latency": _half_load_result(rate, arrivals, latency_texts, job, latencies),
    }


# ----------------------------------------------------------------------------- project path
class _Timed:
    """Proxy that sums the wall time of one method of the wrapped object."""

    def __init__(self, inner: Any, method: str) -> None:
        self._inner, self._method, self.seconds, self.calls = inner, method, 0.0, 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds += time.perf_counter() - started
                    self.calls += 1

        return timed


class _Profile:
    """Where the classifier's worker threads spend their time (instrumented, not sampled).

    Benchmark-only instrumentation of private state: each slot's `session.run` and
    `tokenizer.encode_batch`, and the instance's `predict_with_stats`, are wrapped in timers.
    If the classifier's internals change shape, the profile is simply left empty.
    """

    def __init__(self, model: Any) -> None:
        self.sessions: list[_Timed] = []
        self.tokenizers: list[_Timed] = []
        self.predict: _Timed | None = None
        slots: list[Any] = []
        try:
            for _ in range(model.sessions):
                slots.append(model._slots.get_nowait())
        except Exception:
            for slot in slots:
                model._slots.put(slot)
            return
        for slot in slots:
            try:
                slot.session = _Timed(slot.session, "run")
                slot.tokenizer = _Timed(slot.tokenizer, "encode_batch")
                self.sessions.append(slot.session)
                self.tokenizers.append(slot.tokenizer)
            except AttributeError:
                pass
            model._slots.put(slot)
        self.predict = _Timed(model, "predict_with_stats")
        model.predict_with_stats = self.predict.predict_with_stats

    @property
    def active(self) -> bool:
        return self.predict is not None

    def snapshot(self) -> dict[str, float]:
        return {
            "ort_s": sum(t.seconds for t in self.sessions),
            "ort_calls": sum(t.calls for t in self.sessions),
            "tokenize_s": sum(t.seconds for t in self.tokenizers),
            "predict_s": self.predict.seconds if self.predict else 0.0,
            "predict_calls": self.predict.calls if self.predict else 0,
        }


def _stats(batcher: Any) -> dict[str, float]:
    s = batcher.stats
    return {
        "batches": s.batches,
        "items": s.items,
        "model_runs": s.model_runs,
        "real_tokens": s.real_tokens,
        "padded_tokens": s.padded_tokens,
    }


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0) for k in after}


async def run_project(
    job: dict[str, Any], texts: Sequence[str], latency_texts: Sequence[str]
) -> dict[str, Any]:
    from classifier import Classifier, MicroBatcher

    show = not job.get("quiet", False)
    extra = {"max_batch_tokens": job["run_tokens"]} if job.get("run_tokens") else {}
    model = Classifier.load(
        job["model_dir"], threads=job["session_threads"], sessions=job["sessions"], **extra
    )
    profile = _Profile(model)
    batcher = MicroBatcher(model, **job.get("batcher", {}))
    await batcher.start()
    await batcher.classify_many(list(texts[: WARMUP * 8]))

    async def backlog(batch: Sequence[str], desc: str) -> tuple[float, float]:
        bar = Progress(len(batch), desc, enabled=show)
        cpu0, start = cpu_seconds(), time.perf_counter()
        tasks = [asyncio.ensure_future(batcher.classify(t)) for t in batch]
        for task in tasks:
            task.add_done_callback(lambda _t: bar.update())
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        bar.close()
        return elapsed, cpu_seconds() - cpu0

    # Probe: size the measured backlog so it runs about target_s.
    probe = list(texts[WARMUP * 8 : WARMUP * 8 + job.get("probe_messages", 200)])
    probe_s, _ = await backlog(probe, f"{job['label']}: probe")
    target = int(len(probe) / probe_s * job["target_s"])
    n = max(job.get("min_messages", 50), min(job["max_messages"], target))
    batch = cycle(list(texts), n)

    prof0, stats0 = profile.snapshot(), _stats(batcher)
    elapsed, cpu = await backlog(batch, f"{job['label']}: throughput")
    prof, stats = _delta(profile.snapshot(), prof0), _delta(_stats(batcher), stats0)
    rate = n / elapsed
    workers = model.sessions
    throughput = {
        "messages": n,
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(rate, 2),
        "cpu_cores_used": round(cpu / elapsed, 2),
        "repeated_texts": max(0, n - len(texts)),
        "batches": stats["batches"],
        "mean_batch_messages": round(stats["items"] / max(1, stats["batches"]), 1),
        "model_runs": stats["model_runs"],
        "padding_ratio": round(1 - stats["real_tokens"] / max(1, stats["padded_tokens"]), 4),
        "real_tokens_per_msg": round(stats["real_tokens"] / max(1, stats["items"]), 2),
        "profile": None
        if not profile.active
        else {
            # Shares of the worker threads' wall time (sessions x elapsed).
            "ort_share": round(prof["ort_s"] / (workers * elapsed), 3),
            "tokenize_share": round(prof["tokenize_s"] / (workers * elapsed), 3),
            "other_in_predict_share": round(
                (prof["predict_s"] - prof["ort_s"] - prof["tokenize_s"]) / (workers * elapsed), 3
            ),
            "outside_predict_share": round(1 - prof["predict_s"] / (workers * elapsed), 3),
            "ort_seconds": round(prof["ort_s"], 3),
            "predict_calls": prof["predict_calls"],
        },
    }

    arrivals, sample, bar = _half_load_schedule(rate, latency_texts, job, show)
    latencies: list[float] = []
    stats0 = _stats(batcher)
    base = time.perf_counter()

    async def one(arrival: float, text: str) -> None:
        await batcher.classify(text)
        latencies.append(time.perf_counter() - base - arrival)
        bar.update()

    tasks = []
    for arrival, text in zip(arrivals, sample, strict=True):
        delay = arrival - (time.perf_counter() - base)
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(float(arrival), text)))
    await asyncio.gather(*tasks)
    bar.close()
    stats = _delta(_stats(batcher), stats0)
    await batcher.close()
    return {
        "throughput": throughput,
        "latency": _half_load_result(
            rate,
            arrivals,
            latency_texts,
            job,
            latencies,
            mean_batch_messages=round(stats["items"] / max(1, stats["batches"]), 2),
        ),
        "layout": {
            "sessions": model.sessions,
            "threads": model.threads,
            "run_max_batch_tokens": model.max_batch_tokens,
            "batcher_max_batch_tokens": batcher.max_batch_tokens,
            "batcher_max_wait_ms": batcher.max_wait * 1000,
        },
    }


# ----------------------------------------------------------------------------- job entry
def _job(job: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    workload = Workload.load(Path(job["workload"]))
    latency_texts = Workload.load(Path(job["latency_workload"])).texts
    texts = workload.texts
    rss_before = current_rss_mb()
    runner = job["runner"]
    load_start = time.perf_counter()
    if runner == "project":
        import onnxruntime  # noqa: F401  (import cost is not model memory)

        rss_before = current_rss_mb()
        result = asyncio.run(run_project(job, texts, latency_texts))
    else:
        split = _Split()
        if runner == "torch":
            predict = torch_predictor(job, split)
        elif runner == "ort_fp32":
            predict = ort_fp32_predictor(job, split)
        else:
            raise ValueError(f"unknown runner {runner!r}")
        result = run_batch1(predict, split, texts, latency_texts, job)
    result["peak_rss_mb"] = peak_rss_mb()
    result["rss_before_model_mb"] = rss_before
    result["wall_s"] = round(time.perf_counter() - load_start, 2)
    # Diagnostics below run after the peak RSS was taken.
    sample = texts[: job.get("tokenizer_messages", 1000)]
    result["tokenizer"] = tokenizer_cost(
        Path(job["model_dir"]), sample, transformers_too=runner == "torch"
    )
    if runner == "project" and job.get("diagnostics", True):
        from benchmarks.profile import budget_sweep, op_profile
        from classifier.model import DEFAULT_MAX_BATCH_TOKENS

        sample = texts[: job.get("profile_messages", 1000)]
        threads = job["session_threads"]
        result["op_profile"] = op_profile(
            Path(job["model_dir"]), sample, budget=job.get("run_tokens") or DEFAULT_MAX_BATCH_TOKENS, threads=threads
        )
        if job.get("sweep"):
            result["budget_sweep"] = budget_sweep(
                Path(job["model_dir"]), sample, job["sweep"], threads=threads
            )
    return result


if __name__ == "__main__":
    raise SystemExit(job_main(None, _job))
