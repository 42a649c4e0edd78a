"""Write an evaluation to disk: metrics.json, PNG plots and a readable REPORT.md."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.evaluation import public_metrics

PLOTS = {
    "confusion": "plots/confusion_matrix.png",
    "roc": "plots/roc.png",
    "pr": "plots/precision_recall.png",
    "reliability": "plots/reliability.png",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window (CI, servers)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(metrics: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    labels = metrics["labels"]
    if metrics["multi_label"]:
        cols = min(4, len(labels))
        rows = math.ceil(len(labels) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
        for ax, label in zip(axes.ravel(), labels, strict=False):
            matrix = np.array(metrics["confusion_matrix"][label])
            ax.imshow(matrix, cmap="Blues")
            for (i, j), value in np.ndenumerate(matrix):
                ax.text(j, i, str(value), ha="center", va="center")
            ax.set_xticks([0, 1], ["no", "yes"])
            ax.set_yticks([0, 1], ["no", "yes"])
            ax.set_title(label)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
        for ax in axes.ravel()[len(labels) :]:
            ax.axis("off")
    else:
        matrix = np.array(metrics["confusion_matrix"], dtype=float)
        rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        size = 1.0 + 0.8 * len(labels)
        fig, ax = plt.subplots(figsize=(size + 1.5, size))
        image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(
                j,
                i,
                f"{int(value)}",
                ha="center",
                va="center",
                color="white" if rates[i, j] > 0.5 else "black",
                fontsize=8,
            )
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("Confusion matrix (counts; colour = share of true label)")
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(metrics: dict[str, Any], kind: str, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for label, curve in metrics["_curves"][kind].items():
        if curve is None:
            continue
        ax.plot(curve.x, curve.y, label=f"{label} ({curve.area:.3f})", linewidth=1.4)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC, one-vs-rest (AUC)")
    else:
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("Precision-recall, one-vs-rest (average precision)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(metrics: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    bins = metrics["calibration"]["bins"]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    centers = [(b["low"] + b["high"]) / 2 for b in bins]
    accuracy = [b["accuracy"] if b["accuracy"] is not None else 0 for b in bins]
    width = bins[0]["high"] - bins[0]["low"]
    ax.bar(centers, accuracy, width=width * 0.9, color="#4c72b0", alpha=0.8, label="accuracy")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability (ECE {metrics['ece']:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(metrics: dict[str, Any], out_dir: Path) -> dict[str, str]:
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    plot_confusion(metrics, out_dir / PLOTS["confusion"])
    plot_curves(metrics, "roc", out_dir / PLOTS["roc"])
    plot_curves(metrics, "pr", out_dir / PLOTS["pr"])
    plot_reliability(metrics, out_dir / PLOTS["reliability"])
    return dict(PLOTS)


def confusion_examples(
    texts: Sequence[str], targets: np.ndarray, probs: np.ndarray, labels: Sequence[str], limit: int
) -> dict[tuple[str, str], list[str]]:
    """Single-label: up to ``limit`` misclassified texts per (true, predicted), most confident first."""
    examples: dict[tuple[str, str], list[tuple[float, str]]] = {}
    if limit <= 0 or probs.ndim != 2 or np.asarray(targets).ndim != 1:
        return {}
    predicted = probs.argmax(axis=1)
    for text, truth, guess, row in zip(texts, targets, predicted, probs, strict=True):
        if truth != guess:
            key = (labels[int(truth)], labels[int(guess)])
            examples.setdefault(key, []).append((float(row[guess]), text))
    return {
        key: [t for _, t in sorted(items, reverse=True)[:limit]] for key, items in examples.items()
    }


def _md_escape(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("`", "'")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def metrics_tables(metrics: dict[str, Any], thresholds: dict[str, float] | None = None) -> str:
    """Markdown: headline table and per-label table (shared by REPORT.md and README.md)."""
    lines = [
        "| metric | value |",
        "|---|---|",
        f"| messages | {metrics['n']} |",
        f"| accuracy{' (exact match)' if metrics['multi_label'] else ''} | {_fmt(metrics['accuracy'])} |",
        f"| macro F1 | {_fmt(metrics['macro_f1'])} |",
        f"| weighted F1 | {_fmt(metrics['weighted_f1'])} |",
        f"| macro ROC AUC | {_fmt(metrics.get('macro_roc_auc'))} |",
        f"| expected calibration error | {_fmt(metrics['ece'])} |",
    ]
    if metrics.get("thresholded"):
        t = metrics["thresholded"]
        lines.append(f"| coverage with thresholds | {_fmt(t['coverage'])} |")
        lines.append(f"| accuracy when confident | {_fmt(t['accuracy_when_confident'])} |")
    lines += [
        "",
        "| label | precision | recall | F1 | support | ROC AUC | threshold |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in metrics["labels"]:
        row = metrics["per_label"][label]
        threshold = (thresholds or {}).get(label)
        lines.append(
            f"| `{label}` | {_fmt(row['precision'])} | {_fmt(row['recall'])} | {_fmt(row['f1'])} | "
            f"{row['support']} | {_fmt(metrics['roc_auc'].get(label))} | {_fmt(threshold, 3)} |"
        )
    return "\n".join(lines)


def confusion_table(metrics: dict[str, Any]) -> str:
    labels = metrics["labels"]
    if metrics["multi_label"]:
        lines = ["| label | TN | FP | FN | TP |", "|---|---|---|---|---|"]
        for label in labels:
            (tn, fp), (fn, tp) = metrics["confusion_matrix"][label]
            lines.append(f"| `{label}` | {tn} | {fp} | {fn} | {tp} |")
        return "\n".join(lines)
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for label, row in zip(labels, metrics["confusion_matrix"], strict=True):
        lines.append(f"| **{label}** | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def write_report(
    out_dir: Path,
    metrics: dict[str, Any],
    *,
    title: str,
    context: Sequence[tuple[str, str]] = (),
    data_summary: str | None = None,
    thresholds: dict[str, float] | None = None,
    examples: dict[tuple[str, str], list[str]] | None = None,
    extra_sections: Sequence[tuple[str, str]] = (),
    extra_json: dict[str, Any] | None = None,
) -> Path:
    """metrics.json + plots/ + REPORT.md in ``out_dir``; returns the report path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(metrics, out_dir)
    payload = {"test": public_metrics(metrics), **(extra_json or {})}
    (out_dir / "metrics.json").write_text(
        json.dumps(payload, indent=2, default=_json_default) + "\n"
    )

    parts = [f"# {title}", ""]
    for key, value in context:
        parts.append(f"- **{key}:** {value}")
    parts += ["", "## Results", "", metrics_tables(metrics, thresholds), ""]
    if thresholds and not metrics["multi_label"]:
        parts.append(
            "Predictions are scored by argmax. With the thresholds, a prediction whose "
            "confidence is below its label's threshold is reported as *uncertain* "
            "(coverage = share that is not)."
        )
        parts.append("")
    parts += [
        "## Confusion matrix",
        "",
        confusion_table(metrics),
        "",
        f"![confusion matrix]({plots['confusion']})",
        "",
    ]
    parts += ["## Worst confusions", ""]
    worst = metrics.get("worst_confusions") or []
    if not worst:
        parts.append("No errors on this split.")
    for item in worst:
        parts.append(f"- **{item['true']} → {item['predicted']}**: {item['count']}")
        for text in (examples or {}).get((item["true"], item["predicted"]), []):
            parts.append(f"  - “{_md_escape(text)}”")
    parts += [
        "",
        "## Curves and calibration",
        "",
        f"![ROC curves]({plots['roc']})",
        "",
        f"![precision-recall curves]({plots['pr']})",
        "",
        f"Expected calibration error: **{metrics['ece']:.4f}** "
        f"({len(metrics['calibration']['bins'])} equal-width bins).",
        "",
        f"![reliability diagram]({plots['reliability']})",
        "",
    ]
    for heading, body in extra_sections:
        parts += [f"## {heading}", "", body, ""]
    if data_summary:
        parts += ["## Data", "", "```", data_summary, "```", ""]
    report = out_dir / "REPORT.md"
    report.write_text("\n".join(parts), encoding="utf-8")
    return report


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
