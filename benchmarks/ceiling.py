"""The int8 limit of this CPU through onnxruntime, and a model's useful work per message.

Ceiling: one ONNX graph holding one encoder layer's six weight matmuls as `MatMulInteger`
(uint8 activations x int8 weights -> int32, the MLAS kernel the dynamic-int8 model runs):
Q, K, V and output projections [M, H] x [H, H], FFN in [M, H] x [H, F], FFN out
[M, F] x [F, H], for several token counts M. It runs with the classifier's session options
and thread layout (S sessions x T intra-op threads, driven from S Python threads), and the
best ops/s over M is the ceiling. The same layer as `DynamicQuantizeMatMul` (float in,
activations quantised on the fly, float out) is measured too: that is what the quantised
model's fused graph actually executes, so the gap between the two is quantisation overhead.

Useful ops per message: 2 x multiply-accumulates of the linear layers (6 per layer) and
the two attention matmuls (QK^T and AV) at the message's *unpadded* length, plus the
classification head on one token. Padding, softmax, layer norms, GELU and embeddings
are not counted as useful: they are overhead the classifier should keep small.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.measure import job_main

DEFAULT_TOKENS = (64, 256, 1024)


def macs_per_message(shape: dict[str, Any], length: int) -> int:
    """Multiply-accumulates of one message of `length` tokens (no padding)."""
    layers, hidden, ffn = shape["layers"], shape["hidden"], shape["ffn"]
    linear = length * (4 * hidden * hidden + 2 * hidden * ffn)
    attention = 2 * length * length * hidden  # QK^T and AV over all heads
    head = hidden * hidden + hidden * shape.get("labels", 7)  # pooler/pre-classifier + out
    return layers * (linear + attention) + head


def ops_per_message(shape: dict[str, Any], lengths: Sequence[int]) -> float:
    """Mean useful ops (2 x MACs) per message over the workload's model-seen lengths."""
    if not lengths:
        return 0.0
    return float(np.mean([2 * macs_per_message(shape, int(n)) for n in lengths]))


def _layer_graph(hidden: int, ffn: int, dynamic: bool) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits, nodes, outputs = [], [], []
    elem_in = TensorProto.FLOAT if dynamic else TensorProto.UINT8
    elem_out = TensorProto.FLOAT if dynamic else TensorProto.INT32
    for i, (k, n) in enumerate([(hidden, hidden)] * 4 + [(hidden, ffn), (ffn, hidden)]):
        weight = rng.integers(-127, 128, (k, n), dtype=np.int8)
        inits.append(numpy_helper.from_array(weight, f"W{i}"))
        source = "A_h" if k == hidden else "A_f"
        if dynamic:
            scale = np.full((n,), 0.01, dtype=np.float32)  # per-channel, like the shipped model
            inits.append(numpy_helper.from_array(scale, f"S{i}"))
            inits.append(numpy_helper.from_array(np.zeros((n,), np.int8), f"Z{i}"))
            nodes.append(
                helper.make_node(
                    "DynamicQuantizeMatMul",
                    [source, f"W{i}", f"S{i}", f"Z{i}"],
                    [f"Y{i}"],
                    domain="com.microsoft",
                )
            )
        else:
            nodes.append(helper.make_node("MatMulInteger", [source, f"W{i}"], [f"Y{i}"]))
        outputs.append(helper.make_tensor_value_info(f"Y{i}", elem_out, None))
    inputs = [
        helper.make_tensor_value_info("A_h", elem_in, [None, hidden]),
        helper.make_tensor_value_info("A_f", elem_in, [None, ffn]),
    ]
    graph = helper.make_graph(nodes, "int8_layer", inputs, outputs, inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=8)
    return model.SerializeToString()


def _feed(hidden: int, ffn: int, tokens: int, dynamic: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    if dynamic:
        return {
            "A_h": rng.standard_normal((tokens, hidden), dtype=np.float32),
            "A_f": rng.standard_normal((tokens, ffn), dtype=np.float32),
        }
    return {
        "A_h": rng.integers(0, 256, (tokens, hidden), dtype=np.uint8),
        "A_f": rng.integers(0, 256, (tokens, ffn), dtype=np.uint8),
    }


def measure_layer(
    hidden: int,
    ffn: int,
    tokens: int,
    *,
    sessions: int,
    threads: int,
    seconds: float,
    dynamic: bool = False,
) -> dict[str, Any]:
    """ops/s of one layer's six matmuls at `tokens` rows, `sessions` runs in parallel."""
    import onnxruntime as ort

    from classifier.model import session_options

    blob = _layer_graph(hidden, ffn, dynamic)
    pool = [
        ort.InferenceSession(blob, sess_options=session_options(threads), providers=["CPUExecutionProvider"])
        for _ in range(sessions)
    ]
    feed = _feed(hidden, ffn, tokens, dynamic)
    for session in pool:  # warm-up: kernel selection, first allocations
        session.run(None, feed)
    counts = [0] * sessions
    start = time.perf_counter()
    stop = start + seconds

    def work(index: int) -> None:
        session = pool[index]
        while time.perf_counter() < stop:
            session.run(None, feed)
            counts[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(sessions)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    macs = tokens * (4 * hidden * hidden + 2 * hidden * ffn)
    return {
        "tokens": tokens,
        "hidden": hidden,
        "ffn": ffn,
        "op": "DynamicQuantizeMatMul" if dynamic else "MatMulInteger",
        "runs": sum(counts),
        "gops": round(2 * macs * sum(counts) / elapsed / 1e9, 1),
    }


def measure_ceiling(
    shapes: Sequence[tuple[int, int]],
    *,
    sessions: int,
    threads: int,
    seconds: float,
    tokens: Sequence[int] = DEFAULT_TOKENS,
    dynamic_too: bool = True,
) -> dict[str, Any]:
    """Per (hidden, ffn): the best MatMulInteger ops/s over `tokens`, and every point."""
    out: dict[str, Any] = {"sessions": sessions, "threads": threads, "points": [], "shapes": {}}
    for hidden, ffn in dict.fromkeys(shapes):
        points = [
            measure_layer(hidden, ffn, m, sessions=sessions, threads=threads, seconds=seconds)
            for m in tokens
        ]
        if dynamic_too:
            points += [
                measure_layer(
                    hidden, ffn, m, sessions=sessions, threads=threads, seconds=seconds, dynamic=True
                )
                for m in tokens
            ]
        out["points"] += points
        best = max(p["gops"] for p in points if p["op"] == "MatMulInteger")
        dyn = [p["gops"] for p in points if p["op"] == "DynamicQuantizeMatMul"]
        out["shapes"][f"{hidden}x{ffn}"] = {
            "ceiling_gops": best,
            "dynamic_quant_best_gops": max(dyn) if dyn else None,
        }
    return out


def _job(job: dict[str, Any]) -> dict[str, Any]:
    return measure_ceiling(
        [tuple(s) for s in job["shapes"]],
        sessions=job["sessions"],
        threads=job["threads"],
        seconds=job["seconds"],
        tokens=job.get("tokens", DEFAULT_TOKENS),
        dynamic_too=job.get("dynamic_too", True),
    )


if __name__ == "__main__":
    raise SystemExit(job_main(None, _job))
