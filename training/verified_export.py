"""Export a fine-tuned model and keep only a graph that passed every check.

fp32 parity is checked first (a failure there means the export itself is wrong, so no
int8 is tried); then int8 settings are tried in order (`int8_settings`), over ever smaller
quantisation scopes (`INT8_SCOPES`), until one agrees with fp32 on the test texts. Raises `VerificationError` when nothing is shippable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.arguments import TrainingArguments
from training.batching import BatchEncoder, predict_logits
from training.export import INT8_SCOPES, export_all, int8_settings, quantize_int8
from training.verification import (
    VerificationError,
    VerificationReport,
    onnx_logits,
    ort_session,
    verify_export,
)


@dataclass
class VerifiedExport:
    """The graph to ship, the fp32 graph, and the evidence that they are right."""

    shipped: Path
    fp32: Path
    shipped_test_logits: np.ndarray
    int8: dict[str, Any] | None  # the scope/per_channel/reduce_range that passed, if quantised
    report: VerificationReport
    fused_ops: dict[str, int]


def spread_sample(texts: Sequence[str], count: int) -> list[str]:
    """``count`` texts spread over the whole list (files are often grouped by label)."""
    if count <= 0 or not texts:
        return []
    step = max(1, len(texts) // count)
    return list(texts[::step][:count])


def export_verified(
    args: TrainingArguments,
    model: Any,
    tokenizer: Any,
    test_texts: Sequence[str],
    test_targets: np.ndarray,
    labels: Sequence[str],
    multi_label: bool,
    scratch: Path,
    log: Callable[[str], None],
) -> VerifiedExport:
    """Export into ``scratch``, verify, and return the graph to ship (see module docstring)."""
    threads = args.effective_threads()
    encoder = BatchEncoder(tokenizer, args.max_length)
    batch = args.eval_batch_size
    log("Exporting to ONNX and optimising ...")
    exported = export_all(model, tokenizer, scratch, opset=args.opset, log=log)
    parity_texts = spread_sample(test_texts, args.parity_samples)
    fused_session = ort_session(exported.fp32, threads)
    checks = {
        "torch_logits": predict_logits(model, encoder, parity_texts, batch),
        "raw_fp32_logits": onnx_logits(
            ort_session(exported.raw_fp32, threads), encoder, parity_texts, batch
        ),
        "fused_fp32_logits": onnx_logits(fused_session, encoder, parity_texts, batch),
        "labels": labels,
        "multi_label": multi_label,
        "parity_tolerance": args.parity_tolerance,
        "min_int8_agreement": args.min_int8_agreement,
        "max_int8_f1_drop": args.max_int8_f1_drop,
    }
    report = verify_export(
        **checks, fp32_test_logits=None, int8_test_logits=None, test_targets=None
    )
    log(report.summary())
    if not report.passed:
        raise VerificationError(
            "export verification failed, model directory not written:\n  "
            + "\n  ".join(report.problems)
        )
    fp32_test = onnx_logits(fused_session, encoder, test_texts, batch)
    if not args.quantize:
        return VerifiedExport(
            exported.fp32, exported.fp32, fp32_test, None, report, exported.fused_ops
        )

    failures: list[str] = []
    settings = int8_settings(args.per_channel, args.reduce_range, args.int8_fallback)
    scopes = INT8_SCOPES if args.int8_fallback else INT8_SCOPES[:1]
    attempt = 0
    for scope in scopes:
        # Every (per_channel, reduce_range) for the full scope; the configured pair and its
        # reduce_range twin for the narrower ones (the others rarely win and cost time).
        for per_channel, reduce_range in settings if scope == scopes[0] else settings[:2]:
            candidate = scratch / f"model_int8_{attempt}.onnx"
            attempt += 1
            quantize_int8(
                exported.fp32, candidate,
                per_channel=per_channel, reduce_range=reduce_range, scope=scope,
            )
            logits = onnx_logits(ort_session(candidate, threads), encoder, test_texts, batch)
            report = verify_export(
                **checks, fp32_test_logits=fp32_test, int8_test_logits=logits,
                test_targets=test_targets,
            )
            name = f"int8 scope={scope} per_channel={per_channel} reduce_range={reduce_range}"
            log(
                f"{name}: agreement with fp32 {report.int8_agreement:.4f}, macro-F1 "
                f"{report.fp32_macro_f1:.4f} -> {report.int8_macro_f1:.4f} "
                f"({'passed' if report.passed else 'failed'})"
            )
            if report.passed:
                choice = {"scope": scope, "per_channel": per_channel, "reduce_range": reduce_range}
                return VerifiedExport(
                    candidate, exported.fp32, logits, choice, report, exported.fused_ops
                )
            failures.extend(f"{name}: {problem}" for problem in report.problems)
    raise VerificationError(
        "int8 verification failed for every setting tried, model directory not written "
        "(use --no-quantize to ship fp32):\n  " + "\n  ".join(failures)
    )
