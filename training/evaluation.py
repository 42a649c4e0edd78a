"""Score predictions: accuracy, F1s, per-label P/R/F1, confusions, ROC/PR, calibration.

Everything takes plain arrays (probabilities and targets) so the same code scores the
PyTorch model during training, the ONNX models during verification and any model
directory through the `classifier` library.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Fewer positives/negatives than this and a per-label curve is not drawn (AUC = None).
MIN_CURVE_SUPPORT = 1


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(logits))  # never overflows; both branches are the same function
    return np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def probabilities(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    return sigmoid(logits) if multi_label else softmax(logits)


def indicator(targets: np.ndarray, num_labels: int, multi_label: bool) -> np.ndarray:
    """Targets as a 0/1 matrix ``[n, num_labels]`` whatever the task."""
    if multi_label:
        return (np.asarray(targets) > 0.5).astype(np.int64)
    matrix = np.zeros((len(targets), num_labels), dtype=np.int64)
    matrix[np.arange(len(targets)), np.asarray(targets, dtype=np.int64)] = 1
    return matrix


def decide(
    probs: np.ndarray, multi_label: bool, thresholds: np.ndarray | None = None
) -> np.ndarray:
    """Predicted class ids (single-label: argmax) or a 0/1 matrix (multi-label)."""
    if multi_label:
        cut = 0.5 if thresholds is None else thresholds[None, :]
        return (probs >= cut).astype(np.int64)
    return probs.argmax(axis=1)


def macro_f1_from_logits(logits: np.ndarray, targets: np.ndarray, multi_label: bool) -> float:
    """Validation score for early stopping (labels absent from both sides ignored)."""
    from sklearn.metrics import f1_score

    probs = probabilities(logits, multi_label)
    predicted = decide(probs, multi_label)
    if multi_label:
        present = (targets.sum(axis=0) + predicted.sum(axis=0)) > 0
        if not present.any():
            return 0.0
        return float(
            f1_score(targets[:, present], predicted[:, present], average="macro", zero_division=0)
        )
    return float(f1_score(targets, predicted, average="macro", zero_division=0))


@dataclass
class Curve:
    """One label's ROC or PR curve (already thinned for plotting)."""

    x: list[float]
    y: list[float]
    area: float


def _thin(x: np.ndarray, y: np.ndarray, limit: int = 400) -> tuple[list[float], list[float]]:
    if len(x) > limit:
        keep = np.unique(np.linspace(0, len(x) - 1, limit).round().astype(int))
        x, y = x[keep], y[keep]
    return [float(v) for v in x], [float(v) for v in y]


def curves(truth: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> tuple[dict, dict]:
    """One-vs-rest ROC and precision-recall curves per label (None if undefined)."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    roc: dict[str, Curve | None] = {}
    pr: dict[str, Curve | None] = {}
    for j, label in enumerate(labels):
        positives = int(truth[:, j].sum())
        negatives = len(truth) - positives
        if positives < MIN_CURVE_SUPPORT or negatives < MIN_CURVE_SUPPORT:
            roc[label] = pr[label] = None
            continue
        fpr, tpr, _ = roc_curve(truth[:, j], probs[:, j])
        roc[label] = Curve(*_thin(fpr, tpr), area=float(auc(fpr, tpr)))
        precision, recall, _ = precision_recall_curve(truth[:, j], probs[:, j])
        ap = float(average_precision_score(truth[:, j], probs[:, j]))
        pr[label] = Curve(*_thin(recall[::-1], precision[::-1]), area=ap)
    return roc, pr


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int) -> dict[str, Any]:
    """Expected calibration error and the reliability table (equal-width bins)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    table = []
    ece = 0.0
    total = max(len(confidence), 1)
    for low, high in itertools.pairwise(edges):
        mask = (confidence > low) & (confidence <= high) if low > 0 else confidence <= high
        count = int(mask.sum())
        if count:
            mean_conf = float(confidence[mask].mean())
            accuracy = float(correct[mask].mean())
            ece += count / total * abs(accuracy - mean_conf)
        else:
            mean_conf = accuracy = None
        table.append(
            {
                "low": float(low),
                "high": float(high),
                "count": count,
                "confidence": mean_conf,
                "accuracy": accuracy,
            }
        )
    return {"ece": float(ece), "bins": table}


def evaluate_predictions(
    probs: np.ndarray,
    targets: np.ndarray,
    labels: Sequence[str],
    multi_label: bool,
    *,
    thresholds: dict[str, float] | None = None,
    calibration_bins: int = 10,
) -> dict[str, Any]:
    """All metrics as a JSON-ready dict (plus ``_curves`` for plotting, not serialised)."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        multilabel_confusion_matrix,
        precision_recall_fscore_support,
    )

    labels = list(labels)
    k = len(labels)
    truth = indicator(targets, k, multi_label)
    threshold_array = np.array([(thresholds or {}).get(label, 0.5) for label in labels])
    if multi_label:
        predicted = decide(probs, True, threshold_array)
        y_true, y_pred = truth, predicted
    else:
        predicted = decide(probs, False)
        y_true, y_pred = np.asarray(targets, dtype=np.int64), predicted

    label_ids = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=None if multi_label else label_ids, zero_division=0
    )
    # Macro over labels that occur in the truth or the predictions (sklearn's behaviour
    # for single-label; made explicit for multi-label so an absent label is not a 0).
    predicted_any = y_pred.any(axis=0) if multi_label else np.bincount(y_pred, minlength=k) > 0
    present = (np.asarray(support) > 0) | predicted_any
    metrics: dict[str, Any] = {
        "n": len(targets),
        "multi_label": multi_label,
        "labels": labels,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(np.mean(f1[present])) if present.any() else 0.0,
        "weighted_f1": float(
            f1_score(
                y_true,
                y_pred,
                average="weighted",
                zero_division=0,
                labels=None if multi_label else label_ids,
            )
        ),
        "per_label": {
            label: {
                "precision": float(precision[j]),
                "recall": float(recall[j]),
                "f1": float(f1[j]),
                "support": int(support[j]),
            }
            for j, label in enumerate(labels)
        },
    }

    roc, pr = curves(truth, probs, labels)
    metrics["roc_auc"] = {label: (c.area if c else None) for label, c in roc.items()}
    metrics["average_precision"] = {label: (c.area if c else None) for label, c in pr.items()}
    aucs = [v for v in metrics["roc_auc"].values() if v is not None]
    metrics["macro_roc_auc"] = float(np.mean(aucs)) if aucs else None

    if multi_label:
        metrics["hamming_accuracy"] = float((y_true == y_pred).mean())
        per_label_cm = multilabel_confusion_matrix(y_true, y_pred)
        metrics["confusion_matrix"] = {
            label: per_label_cm[j].tolist() for j, label in enumerate(labels)
        }  # [[tn, fp], [fn, tp]]
        metrics["calibration"] = calibration(
            probs.ravel(), (truth.ravel() == 1).astype(float), calibration_bins
        )
        metrics["calibration"]["note"] = "every (message, label) sigmoid score vs. truth"
        metrics["worst_confusions"] = _multilabel_errors(y_true, y_pred, labels)
    else:
        matrix = confusion_matrix(y_true, y_pred, labels=label_ids)
        metrics["confusion_matrix"] = matrix.tolist()
        confidence = probs.max(axis=1)
        metrics["calibration"] = calibration(
            confidence, (y_pred == y_true).astype(float), calibration_bins
        )
        metrics["worst_confusions"] = _worst_confusions(matrix, labels)
        metrics["thresholded"] = _thresholded(probs, y_true, threshold_array)
    metrics["ece"] = metrics["calibration"]["ece"]
    metrics["_curves"] = {"roc": roc, "pr": pr}
    return metrics


def _worst_confusions(matrix: np.ndarray, labels: Sequence[str], top: int = 10) -> list[dict]:
    pairs = [
        {"true": labels[i], "predicted": labels[j], "count": int(matrix[i, j])}
        for i in range(len(labels))
        for j in range(len(labels))
        if i != j and matrix[i, j] > 0
    ]
    pairs.sort(key=lambda p: (-p["count"], p["true"], p["predicted"]))
    return pairs[:top]


def _multilabel_errors(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> list[dict]:
    errors = []
    for j, label in enumerate(labels):
        missed = int(((y_true[:, j] == 1) & (y_pred[:, j] == 0)).sum())
        extra = int(((y_true[:, j] == 0) & (y_pred[:, j] == 1)).sum())
        if missed:
            errors.append({"true": label, "predicted": "(missed)", "count": missed})
        if extra:
            errors.append({"true": "(not)", "predicted": label, "count": extra})
    errors.sort(key=lambda p: -p["count"])
    return errors[:10]


def _thresholded(probs: np.ndarray, y_true: np.ndarray, thresholds: np.ndarray) -> dict[str, float]:
    """With per-label thresholds: how many predictions are confident, and how good."""
    predicted = probs.argmax(axis=1)
    confident = probs.max(axis=1) >= thresholds[predicted]
    coverage = float(confident.mean()) if len(confident) else 0.0
    accuracy = float((predicted[confident] == y_true[confident]).mean()) if confident.any() else 0.0
    return {
        "coverage": coverage,
        "accuracy_when_confident": accuracy,
        "uncertain": int((~confident).sum()),
    }


def public_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The JSON-serialisable part (drops plotting curves)."""
    return {key: value for key, value in metrics.items() if not key.startswith("_")}


def group_scores(
    probs: np.ndarray,
    targets: np.ndarray,
    groups: Sequence[object],
    multi_label: bool,
    thresholds: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Accuracy and macro-F1 per value of a column (language, server, ...), largest first.

    One headline number hides where a model is weak: a model can be right on 94% of English
    messages and 77% of the rest.
    """
    from sklearn.metrics import f1_score

    values = np.asarray(["(missing)" if g is None else str(g) for g in groups], dtype=object)
    targets = np.asarray(targets)
    predicted = decide(probs, multi_label, thresholds)
    scores: dict[str, dict[str, float]] = {}
    for value, count in Counter(values.tolist()).most_common():
        mask = values == value
        y_pred = predicted[mask]
        if multi_label:
            y_true = (targets[mask] > 0.5).astype(np.int64)
            accuracy = float((y_true == y_pred).all(axis=1).mean())
            present = (y_true.sum(axis=0) + y_pred.sum(axis=0)) > 0
            macro = (
                float(f1_score(y_true[:, present], y_pred[:, present], average="macro", zero_division=0))
                if present.any()
                else 0.0
            )
        else:
            y_true = targets[mask].astype(np.int64)
            accuracy = float((y_true == y_pred).mean())
            macro = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
        scores[value] = {"n": int(count), "accuracy": accuracy, "macro_f1": macro}
    return scores


def group_table(column: str, scores: dict[str, dict[str, float]]) -> str:
    """``group_scores`` as a plain-text table."""
    width = max(len(column), *(len(value) for value in scores))
    lines = [f"{column:<{width}}  {'n':>5}  accuracy  macro-F1"]
    for value, row in scores.items():
        lines.append(
            f"{value:<{width}}  {row['n']:>5}  {row['accuracy']:>8.4f}  {row['macro_f1']:>8.4f}"
        )
    return "\n".join(lines)


def summary_table(metrics: dict[str, Any]) -> str:
    """A plain-text table for terminals: headline numbers, then per-label rows."""
    lines = [
        f"n={metrics['n']}  accuracy={metrics['accuracy']:.4f}  macro-F1={metrics['macro_f1']:.4f}  "
        f"weighted-F1={metrics['weighted_f1']:.4f}  ECE={metrics['ece']:.4f}"
    ]
    if metrics.get("thresholded"):
        t = metrics["thresholded"]
        lines.append(
            f"with thresholds: coverage={t['coverage']:.3f}  "
            f"accuracy when confident={t['accuracy_when_confident']:.4f}  uncertain={t['uncertain']}"
        )
    width = max(len("label"), *(len(label) for label in metrics["labels"]))
    lines.append(f"{'label':<{width}}  precision  recall      f1  support     AUC")
    for label in metrics["labels"]:
        row = metrics["per_label"][label]
        auc = metrics["roc_auc"].get(label)
        lines.append(
            f"{label:<{width}}  {row['precision']:>9.4f}  {row['recall']:>6.4f}  {row['f1']:>6.4f}  "
            f"{row['support']:>7}  {'   n/a' if auc is None else f'{auc:6.4f}'}"
        )
    return "\n".join(lines)
