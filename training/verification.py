"""Check the exported graphs before anything is shipped.

A model directory is only written when all of these hold:

- fp32 ONNX (raw export and ORT-fused) logits match PyTorch within ``parity_tolerance``
  (max abs difference over a sample of test texts): the export computes the same function;
- int8 agrees with fp32 on at least ``min_int8_agreement`` of the test predictions and
  its macro-F1 is at most ``max_int8_f1_drop`` lower: quantisation did not break it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.batching import BatchEncoder, sequential_order
from training.evaluation import decide, evaluate_predictions, probabilities


class VerificationError(RuntimeError):
    """The exported model failed a check; nothing was written."""


@dataclass
class VerificationReport:
    """Every measured number, and the checks that failed (empty = shippable)."""

    parity_samples: int = 0
    raw_fp32_max_abs_diff: float = float("nan")
    fused_fp32_max_abs_diff: float = float("nan")
    int8_agreement: float | None = None
    fp32_macro_f1: float | None = None
    int8_macro_f1: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "parity_samples": self.parity_samples,
            "raw_fp32_max_abs_diff": self.raw_fp32_max_abs_diff,
            "fused_fp32_max_abs_diff": self.fused_fp32_max_abs_diff,
            "int8_agreement": self.int8_agreement,
            "fp32_macro_f1": self.fp32_macro_f1,
            "int8_macro_f1": self.int8_macro_f1,
            "passed": self.passed,
            "problems": list(self.problems),
        }

    def summary(self) -> str:
        lines = [
            f"fp32 parity on {self.parity_samples} texts: raw max|diff| = "
            f"{self.raw_fp32_max_abs_diff:.2e}, fused max|diff| = {self.fused_fp32_max_abs_diff:.2e}"
        ]
        if self.int8_agreement is not None:
            lines.append(
                f"int8 vs fp32: agreement {self.int8_agreement:.4f}, macro-F1 "
                f"{self.fp32_macro_f1:.4f} -> {self.int8_macro_f1:.4f}"
            )
        lines.extend(f"FAILED: {problem}" for problem in self.problems)
        return "\n".join(lines)


def ort_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_logits(
    session: Any, encoder: BatchEncoder, texts: Sequence[str], batch_size: int
) -> np.ndarray:
    """Logits of an ONNX graph for ``texts`` (original order), fed like PyTorch is."""
    wanted = {node.name for node in session.get_inputs()}
    width = session.get_outputs()[0].shape[-1]
    out: np.ndarray | None = None
    lengths = encoder.lengths(texts)
    for indices in sequential_order(lengths, batch_size):
        encoded = encoder.encode([texts[i] for i in indices], return_tensors="np")
        feed = {
            name: np.asarray(value, dtype=np.int64)
            for name, value in encoded.items()
            if name in wanted
        }
        logits = session.run(["logits"], feed)[0]
        if out is None:
            out = np.zeros(
                (len(texts), width if isinstance(width, int) else logits.shape[1]), np.float32
            )
        out[indices] = logits
    return out if out is not None else np.zeros((0, 0), np.float32)


def verify_export(
    *,
    torch_logits: np.ndarray,
    raw_fp32_logits: np.ndarray,
    fused_fp32_logits: np.ndarray,
    fp32_test_logits: np.ndarray | None,
    int8_test_logits: np.ndarray | None,
    test_targets: np.ndarray | None,
    labels: Sequence[str],
    multi_label: bool,
    parity_tolerance: float,
    min_int8_agreement: float,
    max_int8_f1_drop: float,
) -> VerificationReport:
    """Compare the graphs (see module docstring); never raises, lists problems instead."""
    report = VerificationReport(parity_samples=len(torch_logits))
    for name, logits in (("raw fp32", raw_fp32_logits), ("fused fp32", fused_fp32_logits)):
        if logits.shape != torch_logits.shape:
            report.problems.append(
                f"{name} ONNX logits have shape {logits.shape}, PyTorch {torch_logits.shape}"
            )
            diff = float("inf")
        else:
            diff = float(np.abs(logits - torch_logits).max()) if logits.size else 0.0
            if not np.isfinite(diff) or diff > parity_tolerance:
                report.problems.append(
                    f"{name} ONNX logits differ from PyTorch by up to {diff:.3g} "
                    f"(allowed {parity_tolerance:g})"
                )
        if name == "raw fp32":
            report.raw_fp32_max_abs_diff = diff
        else:
            report.fused_fp32_max_abs_diff = diff

    if int8_test_logits is not None and fp32_test_logits is not None and test_targets is not None:
        if int8_test_logits.shape != fp32_test_logits.shape:
            report.problems.append(
                f"int8 logits have shape {int8_test_logits.shape}, fp32 {fp32_test_logits.shape}"
            )
            return report
        fp32_probs = probabilities(fp32_test_logits, multi_label)
        int8_probs = probabilities(int8_test_logits, multi_label)
        fp32_pred = decide(fp32_probs, multi_label)
        int8_pred = decide(int8_probs, multi_label)
        same = (fp32_pred == int8_pred).all(axis=1) if multi_label else fp32_pred == int8_pred
        report.int8_agreement = float(same.mean()) if len(same) else 1.0
        report.fp32_macro_f1 = evaluate_predictions(fp32_probs, test_targets, labels, multi_label)[
            "macro_f1"
        ]
        report.int8_macro_f1 = evaluate_predictions(int8_probs, test_targets, labels, multi_label)[
            "macro_f1"
        ]
        if report.int8_agreement < min_int8_agreement:
            report.problems.append(
                f"int8 agrees with fp32 on only {report.int8_agreement:.2%} of test predictions "
                f"(need {min_int8_agreement:.0%}); train longer (an undertrained model has near-tied "
                "scores that quantisation flips), or ship fp32 with --no-quantize"
            )
        drop = report.fp32_macro_f1 - report.int8_macro_f1
        if drop > max_int8_f1_drop:
            report.problems.append(
                f"int8 macro-F1 is {drop:.4f} below fp32 (allowed {max_int8_f1_drop:.4f})"
            )
    return report
