"""Assemble a model directory (docs/architecture.md) in a staging folder, then swap it in.

The target directory is only ever replaced by a complete, verified directory: everything
is written to ``<out>.staging`` first and renamed into place at the very end, so a crash
or a failed check leaves the previous model (or nothing) - never half a model.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

from classifier.preprocess import PREPROCESSING

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def default_version(base_tag: str, data_sha256: str, today: dt.date | None = None) -> str:
    """``chatlabel-<base>-<yyyymmdd>-<first 8 hex of the data sha256>``."""
    day = (today or dt.date.today()).strftime("%Y%m%d")
    return f"chatlabel-{base_tag}-{day}-{data_sha256[:8]}"


def staging_path(out: Path) -> Path:
    return out.with_name(out.name + ".staging")


def write_hf_files(staging: Path, model: Any, tokenizer: Any, max_length: int) -> None:
    """config.json (labels, problem type) and the fast tokenizer files."""
    config = model.config
    config.architectures = [type(model).__name__]
    config.to_json_file(str(staging / "config.json"))
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(str(staging))
    missing = [name for name in TOKENIZER_FILES if not (staging / name).is_file()]
    if missing:
        raise RuntimeError(f"tokenizer.save_pretrained did not write {', '.join(missing)}")


def write_classifier_json(
    staging: Path,
    *,
    version: str,
    max_length: int,
    thresholds: dict[str, float],
    metrics: dict[str, Any],
) -> None:
    payload = {
        "version": version,
        "max_length": max_length,
        "thresholds": thresholds,
        "preprocessing": PREPROCESSING,
        "metrics": metrics,
    }
    (staging / "classifier.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def headline_metrics(metrics: dict[str, Any], split: str) -> dict[str, Any]:
    """The small metrics block that goes into classifier.json (the bot shows it)."""
    return {
        "split": split,
        "n": metrics["n"],
        "accuracy": round(metrics["accuracy"], 4),
        "macro_f1": round(metrics["macro_f1"], 4),
        "weighted_f1": round(metrics["weighted_f1"], 4),
        "ece": round(metrics["ece"], 4),
        "per_label_f1": {label: round(row["f1"], 4) for label, row in metrics["per_label"].items()},
    }


def promote(staging: Path, out: Path) -> None:
    """Atomically put ``staging`` at ``out`` (replacing an old directory, if any)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
