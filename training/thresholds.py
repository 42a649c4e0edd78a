"""Per-label decision thresholds, tuned on the validation split (never on test).

Single-label: a prediction whose confidence is below its label's threshold is reported
as ``uncertain`` by `classifier`. Per label we pick the lowest confidence at which the
validation precision of that label's predictions reaches ``precision_target`` (so the
bot can act on confident predictions), clamped to ``[floor, ceiling]``.

Multi-label: the threshold decides whether a label applies at all, so per label we pick
the sigmoid cut that maximises validation F1, clamped the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Fewer validation predictions/positives than this: not enough evidence, use the floor
#: (single-label) or 0.5 (multi-label).
MIN_EVIDENCE = 5


def _clamp(value: float, floor: float, ceiling: float) -> float:
    return round(float(min(max(value, floor), ceiling)), 4)


def single_label_thresholds(
    probs: np.ndarray,
    targets: np.ndarray,
    labels: Sequence[str],
    *,
    precision_target: float,
    floor: float,
    ceiling: float,
) -> dict[str, float]:
    predicted = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    thresholds: dict[str, float] = {}
    for j, label in enumerate(labels):
        mask = predicted == j
        if mask.sum() < MIN_EVIDENCE:
            thresholds[label] = _clamp(floor, floor, ceiling)
            continue
        order = np.argsort(-confidence[mask])
        conf = confidence[mask][order]
        correct = (targets[mask][order] == j).astype(float)
        # Precision of "predict label j when confidence >= conf[i]" for each cut i.
        precision = np.cumsum(correct) / np.arange(1, len(correct) + 1)
        ok = np.nonzero(
            (precision >= precision_target) & (np.arange(1, len(conf) + 1) >= MIN_EVIDENCE)
        )[0]
        # The lowest cut whose precision meets the target; none: the strictest allowed.
        value = float(conf[ok.max()]) if len(ok) else ceiling
        thresholds[label] = _clamp(value, floor, ceiling)
    return thresholds


def multi_label_thresholds(
    probs: np.ndarray, targets: np.ndarray, labels: Sequence[str], *, floor: float, ceiling: float
) -> dict[str, float]:
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    thresholds: dict[str, float] = {}
    for j, label in enumerate(labels):
        truth = targets[:, j] > 0.5
        if truth.sum() < MIN_EVIDENCE:
            thresholds[label] = _clamp(0.5, floor, ceiling)
            continue
        best, best_f1 = 0.5, -1.0
        for cut in grid:
            predicted = probs[:, j] >= cut
            tp = float((predicted & truth).sum())
            f1 = (
                2 * tp / (predicted.sum() + truth.sum()) if (predicted.sum() + truth.sum()) else 0.0
            )
            # Ties go to the cut closest to 0.5 (least surprising).
            if f1 > best_f1 + 1e-12 or (
                abs(f1 - best_f1) <= 1e-12 and abs(cut - 0.5) < abs(best - 0.5)
            ):
                best, best_f1 = float(cut), f1
        thresholds[label] = _clamp(best, floor, ceiling)
    return thresholds


def tune_thresholds(
    probs: np.ndarray,
    targets: np.ndarray,
    labels: Sequence[str],
    multi_label: bool,
    *,
    precision_target: float = 0.9,
    floor: float = 0.35,
    ceiling: float = 0.9,
) -> dict[str, float]:
    """Thresholds for every label (see module docstring); 0.5-ish defaults without data."""
    if len(probs) == 0:
        return {label: _clamp(0.5, floor, ceiling) for label in labels}
    if multi_label:
        return multi_label_thresholds(probs, targets, labels, floor=floor, ceiling=ceiling)
    return single_label_thresholds(
        probs, targets, labels, precision_target=precision_target, floor=floor, ceiling=ceiling
    )
