"""Where the project path's time goes: ONNX Runtime op profile, and a batch-size sweep.

Both run after the timed measurements of the project variant (same process, so they do not
disturb the numbers in the table, but they are measured on the same machine state):

- `op_profile`: ORT's built-in profiler on the shipped int8 graph, fed the workload in
  length-sorted runs of at most `max_batch_tokens` padded tokens (what `Classifier` does),
  summed by op type. Tells matmul time from attention, layer-norm, GELU and quantisation.
- `budget_sweep`: single-thread `Classifier.predict` throughput for several
  `max_batch_tokens` (the padded-token budget of one model run). Small runs keep the
  activations in cache and padding near zero; large runs amortise per-run overhead.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def op_profile(model_dir: Path, texts: Sequence[str], *, budget: int, threads: int) -> dict[str, Any]:
    """Share of kernel time per op type over the workload (one session, `threads` threads)."""
    import onnxruntime as ort

    from classifier.model import plan_runs, session_options
    from classifier.model_dir import open_tokenizer, pad_id, read_model_dir
    from classifier.preprocess import normalize

    spec = read_model_dir(model_dir)
    tokenizer = open_tokenizer(spec)
    encodings = tokenizer.encode_batch([normalize(t) for t in texts])
    lengths = [len(e.ids) for e in encodings]
    pad = pad_id(spec, tokenizer)
    with tempfile.TemporaryDirectory(prefix="bench-ortprof-") as tmp:
        options = session_options(threads)
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(str(spec.onnx_path), options, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        runs = plan_runs(lengths, max(budget, spec.max_length))
        started = time.perf_counter()
        for rows in runs:
            width = max(lengths[i] for i in rows)
            ids = np.full((len(rows), width), pad, dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                ids[r, : lengths[i]] = encodings[i].ids
                mask[r, : lengths[i]] = 1
            feed = {"input_ids": ids}
            if "attention_mask" in names:
                feed["attention_mask"] = mask
            if "token_type_ids" in names:
                feed["token_type_ids"] = np.zeros_like(ids)
            session.run(["logits"], feed)
        elapsed = time.perf_counter() - started
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and str(event.get("name", "")).endswith("_kernel_time"):
            by_op[event.get("args", {}).get("op_name", "?")] += int(event.get("dur", 0))
    total = sum(by_op.values()) or 1
    padded = sum(max(lengths[i] for i in rows) * len(rows) for rows in runs)
    return {
        "budget": max(budget, spec.max_length),
        "threads": threads,
        "runs": len(runs),
        "messages": len(texts),
        "padding_ratio": round(1 - sum(lengths) / max(1, padded), 4),
        "msgs_per_s_profiled": round(len(texts) / elapsed, 1),
        "op_share": {op: round(us / total, 4) for op, us in by_op.most_common(12)},
    }


def budget_sweep(
    model_dir: Path, texts: Sequence[str], budgets: Sequence[int], *, threads: int
) -> list[dict[str, Any]]:
    """Single-session `Classifier.predict` msgs/s for each `max_batch_tokens`."""
    from classifier import Classifier

    out = []
    for budget in budgets:
        model = Classifier.load(model_dir, threads=threads, sessions=1, max_batch_tokens=budget)
        model.predict(list(texts[:16]))  # warm-up
        started = time.perf_counter()
        _, stats = model.predict_with_stats(list(texts))
        elapsed = time.perf_counter() - started
        out.append(
            {
                "max_batch_tokens": model.max_batch_tokens,
                "threads": threads,
                "msgs_per_s": round(len(texts) / elapsed, 1),
                "runs": stats.runs,
                "padding_ratio": round(1 - stats.real_tokens / max(1, stats.padded_tokens), 4),
            }
        )
        del model
    return out
