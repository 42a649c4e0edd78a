"""The model directory's README.md: a Hugging Face-style model card."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import yaml

from training.report import metrics_tables

PACKAGES = ("torch", "transformers", "tokenizers", "onnx", "onnxruntime", "optimum", "scikit-learn")


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def render_model_card(
    *,
    version: str,
    base_model: str,
    base_source: str,
    labels: Sequence[str],
    multi_label: bool,
    data_path: str,
    data_sha256: str,
    data_summary: str,
    metrics: dict[str, Any],
    thresholds: dict[str, float],
    verification: dict[str, Any],
    training: dict[str, Any],
    quantized: bool,
    versions: dict[str, str],
    fused_ops: dict[str, int] | None = None,
    int8: dict[str, bool] | None = None,
) -> str:
    front = {
        "language": ["en"],
        "license": "mit",
        "library_name": "onnxruntime",
        "pipeline_tag": "text-classification",
        "base_model": base_model,
        "tags": ["text-classification", "discord", "chat", "onnx"]
        + (["int8"] if quantized else []),
        "model-index": [
            {
                "name": version,
                "results": [
                    {
                        "task": {"type": "text-classification", "name": "chat message intent"},
                        "dataset": {"name": "chatlabel messages (test split)", "type": "custom"},
                        "metrics": [
                            {"type": "accuracy", "value": round(metrics["accuracy"], 4)},
                            {
                                "type": "f1",
                                "name": "macro F1",
                                "value": round(metrics["macro_f1"], 4),
                            },
                            {
                                "type": "f1",
                                "name": "weighted F1",
                                "value": round(metrics["weighted_f1"], 4),
                            },
                        ],
                    }
                ],
            }
        ],
    }
    task = "multi-label (sigmoid per label)" if multi_label else "single-label (softmax)"
    threshold_meaning = (
        "a label applies when its sigmoid score reaches its threshold (tuned for F1 on validation)"
        if multi_label
        else "below its label's threshold a prediction is reported as `uncertain` "
        "(tuned on validation for the target precision)"
    )
    versions_md = "\n".join(f"| {name} | {value} |" for name, value in versions.items())
    fused = ", ".join(f"{op} x{n}" for op, n in (fused_ops or {}).items() if n) or "none"
    if quantized:
        settings = int8 or {}
        graph = (
            "dynamic int8 (int8 weights, activations quantised at run time; "
            f"scope={settings.get('scope', 'all')}, per_channel={settings.get('per_channel')}, "
            f"reduce_range={settings.get('reduce_range')})"
        )
    else:
        graph = "fp32"
    graph += f"; ONNX Runtime transformer fusion: {fused}"
    best_f1 = training.get("best_validation_macro_f1")
    body = f"""
# {version}

Classifies Discord chat messages by purpose: {", ".join(f"`{label}`" for label in labels)}.
Task: {task}. Runs on CPU with ONNX Runtime through the project's `classifier` library
(`Classifier.load(DIR)`); the directory also loads with
`optimum.onnxruntime.ORTModelForSequenceClassification.from_pretrained(DIR)`.

## Model

- **Base model:** `{base_model}` (loaded from `{base_source}`), fine-tuned with a new
  classification head.
- **Graph:** `model.onnx`, {graph}.
- **Input:** text normalised with `classifier.preprocess.normalize` (`discord-v1`: mentions,
  URLs, invites, code blocks folded to markers), then tokenized to at most {training.get("max_length")}
  tokens. Do the same before calling the graph directly.
- **Training:** {training.get("epochs_run")} epoch(s), kept: {_kept_weights(training.get("best_epoch"))} (validation macro-F1
  {_fmt_optional(best_f1)}); learning rate {training.get("learning_rate")}, batch {training.get("batch_size")}, seed {training.get("seed")}, class weights {"on" if training.get("class_weights") else "off"}.
  All arguments: `training_args.yaml`.

## Data

- **File:** `{data_path}`, sha256 `{data_sha256}`.
- **No Discord content was used.** The dataset was written for this project (synthetic and
  hand-written chat-style messages); no messages were collected from Discord. Discord's
  Developer Policy restricts using message content to train machine-learning models, so
  do not retrain this model on messages the bot sees without the required permission.

```
{data_summary}
```

## Evaluation (test split, shipped graph)

{metrics_tables(metrics, thresholds)}

Thresholds: {threshold_meaning}. Full metrics, plots and the worst confusions:
`metrics.json`, `REPORT.md`, `plots/`.

Export checks (all passed, or this directory would not exist): fp32 ONNX vs PyTorch max
|logit diff| {verification.get("raw_fp32_max_abs_diff", float("nan")):.2e} (raw) /
{verification.get("fused_fp32_max_abs_diff", float("nan")):.2e} (fused); int8 vs fp32 agreement
{_fmt_optional(verification.get("int8_agreement"))}, macro-F1 {_fmt_optional(verification.get("fp32_macro_f1"))} →
{_fmt_optional(verification.get("int8_macro_f1"))}.

## Intended use

Tagging and counting messages in Discord communities (questions left unanswered, spam and
toxicity alerts for moderators, weekly summaries). Predictions assist people; they are not
a basis for automatic punishment.

## Limitations

- English chat only; other languages, long posts and code-heavy messages are out of scope.
- Trained on a small project dataset: expect lower scores on real servers with their own
  slang, in-jokes and topics, and check a sample before acting on a label.
- `toxic` and `spam` depend on context the model never sees (earlier messages, who is
  talking to whom); friendly trash talk and sarcasm are the most frequent mistakes.
- Confidence is only roughly calibrated (see ECE above); use the thresholds, and treat
  `uncertain` predictions as unknown.

## Package versions

| package | version |
|---|---|
{versions_md}
"""
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n" + body


def _kept_weights(best_epoch: object) -> str:
    """`best_epoch` < 0 means the average of the last -best_epoch epochs was kept."""
    if isinstance(best_epoch, int) and best_epoch < 0:
        return f"the weight average of the last {-best_epoch} epochs"
    return f"epoch {best_epoch}"


def _fmt_optional(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"
