"""Read and validate a model directory (format: docs/architecture.md) before serving it.

Everything that can be wrong with a directory is checked at load time, so a bad model
fails when the bot starts or hot-reloads, never on the first message. Every error is a
`ModelLoadError` that names the file at fault and says what is wrong with it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from classifier.preprocess import PREPROCESSING

__all__ = ["ModelDir", "ModelLoadError", "check_session", "open_tokenizer", "read_model_dir"]

SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"
DEFAULT_THRESHOLD = 0.5
MAX_LENGTH_CAP = 512
KNOWN_INPUTS = frozenset({"input_ids", "attention_mask", "token_type_ids"})
# Embedding tables are often padded to a multiple of 64/128 rows beyond the tokenizer.
EMBEDDING_SLACK = 128


class ModelLoadError(ValueError):
    """A model directory cannot be served; `path` is the file (or directory) at fault."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type[ModelLoadError], tuple[Path, str]]:
        return (type(self), (self.path, self.problem))  # picklable across processes


@dataclass(frozen=True, slots=True)
class ModelDir:
    """Everything `Classifier` needs to know about a validated model directory."""

    path: Path
    labels: tuple[str, ...]
    multi_label: bool
    thresholds: dict[str, float]
    version: str
    max_length: int
    metrics: dict[str, Any] = field(default_factory=dict)
    vocab_size: int | None = None
    pad_token: str | None = None

    @property
    def onnx_path(self) -> Path:
        return self.path / "model.onnx"

    @property
    def tokenizer_path(self) -> Path:
        return self.path / "tokenizer.json"


def read_model_dir(path: str | Path) -> ModelDir:
    """Parse and check the JSON files of a model directory (the ONNX graph is checked later)."""
    root = Path(path)
    if not root.is_dir():
        raise ModelLoadError(root, "model directory does not exist or is not a directory")
    onnx_path = root / "model.onnx"
    if not onnx_path.is_file():
        raise ModelLoadError(onnx_path, "missing (every model directory needs model.onnx)")
    if onnx_path.stat().st_size == 0:
        raise ModelLoadError(onnx_path, "file is empty")
    if not (root / "tokenizer.json").is_file():
        raise ModelLoadError(
            root / "tokenizer.json", "missing (a fast tokenizer's tokenizer.json is required)"
        )

    config_path = root / "config.json"
    config = _read_json(config_path, required=True)
    labels = _labels(config_path, config)
    multi_label = _multi_label(config_path, config)

    extra_path = root / "classifier.json"
    extra = _read_json(extra_path, required=False)
    tok_config = _read_json(root / "tokenizer_config.json", required=False)
    special = _read_json(root / "special_tokens_map.json", required=False)

    max_length = _max_length(extra_path, extra, config, tok_config)
    vocab_size = config.get("vocab_size")
    return ModelDir(
        path=root,
        labels=labels,
        multi_label=multi_label,
        thresholds=_thresholds(extra_path, extra, labels),
        version=_version(extra_path, extra, root, onnx_path),
        max_length=max_length,
        metrics=_metrics(extra_path, extra),
        vocab_size=vocab_size if isinstance(vocab_size, int) and vocab_size > 0 else None,
        pad_token=_pad_token(tok_config, special),
    )


def _read_json(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise ModelLoadError(path, "missing")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(path, f"expected a JSON object, got {type(data).__name__}")
    return data


def _labels(path: Path, config: dict[str, Any]) -> tuple[str, ...]:
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise ModelLoadError(path, "has no id2label mapping (label names are required)")
    try:
        by_id = {int(key): value for key, value in id2label.items()}
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(path, f"id2label keys must be integers ({exc})") from exc
    if sorted(by_id) != list(range(len(by_id))):
        raise ModelLoadError(path, f"id2label ids must be 0..{len(by_id) - 1}, got {sorted(by_id)}")
    labels = tuple(by_id[i] for i in range(len(by_id)))
    if not all(isinstance(label, str) and label for label in labels):
        raise ModelLoadError(path, "id2label values must be non-empty strings")
    if len(set(labels)) != len(labels):
        raise ModelLoadError(path, f"id2label has duplicate labels: {labels}")
    label2id = config.get("label2id")
    if label2id is not None and label2id != {label: i for i, label in enumerate(labels)}:
        raise ModelLoadError(path, "label2id does not mirror id2label")
    return labels


def _multi_label(path: Path, config: dict[str, Any]) -> bool:
    problem = config.get("problem_type") or SINGLE_LABEL
    if problem not in (SINGLE_LABEL, MULTI_LABEL):
        raise ModelLoadError(
            path, f"problem_type must be {SINGLE_LABEL!r} or {MULTI_LABEL!r}, got {problem!r}"
        )
    return problem == MULTI_LABEL


def _max_length(
    path: Path, extra: dict[str, Any], config: dict[str, Any], tok_config: dict[str, Any]
) -> int:
    positions = config.get("max_position_embeddings")
    positions = positions if isinstance(positions, int) and positions > 0 else None
    if "max_length" in extra:
        value = extra["max_length"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            raise ModelLoadError(path, f"max_length must be an integer >= 2, got {value!r}")
        if positions is not None and value > positions:
            raise ModelLoadError(
                path, f"max_length {value} exceeds the model's max_position_embeddings {positions}"
            )
        return value
    candidates = [MAX_LENGTH_CAP]
    if positions is not None:
        candidates.append(positions)
    model_max = tok_config.get("model_max_length")
    if isinstance(model_max, int | float) and model_max >= 2:  # HF writes 1e30 for "unset"
        candidates.append(int(min(model_max, MAX_LENGTH_CAP)))
    return min(candidates)


def _thresholds(path: Path, extra: dict[str, Any], labels: tuple[str, ...]) -> dict[str, float]:
    thresholds = dict.fromkeys(labels, DEFAULT_THRESHOLD)
    given = extra.get("thresholds", {})
    if not isinstance(given, dict):
        raise ModelLoadError(path, "thresholds must be an object {label: float}")
    for label, value in given.items():
        if label not in thresholds:
            raise ModelLoadError(path, f"threshold for unknown label {label!r} (labels: {labels})")
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or not 0.0 <= value <= 1.0
        ):
            raise ModelLoadError(path, f"threshold for {label!r} must be in [0, 1], got {value!r}")
        thresholds[label] = float(value)
    preprocessing = extra.get("preprocessing", PREPROCESSING)
    if preprocessing != PREPROCESSING:
        raise ModelLoadError(
            path,
            f"model was trained with preprocessing {preprocessing!r}, this library implements "
            f"{PREPROCESSING!r}",
        )
    return thresholds


def _version(path: Path, extra: dict[str, Any], root: Path, onnx_path: Path) -> str:
    if "version" in extra:
        version = extra["version"]
        if not isinstance(version, str) or not version.strip():
            raise ModelLoadError(path, f"version must be a non-empty string, got {version!r}")
        return version
    digest = hashlib.sha256()
    with onnx_path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"{root.resolve().name}-{digest.hexdigest()[:12]}"


def _metrics(path: Path, extra: dict[str, Any]) -> dict[str, Any]:
    metrics = extra.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ModelLoadError(path, "metrics must be an object")
    return metrics


def _pad_token(tok_config: dict[str, Any], special: dict[str, Any]) -> str | None:
    for source in (tok_config, special):
        token = source.get("pad_token")
        if isinstance(token, dict):  # AddedToken serialised as an object
            token = token.get("content")
        if isinstance(token, str) and token:
            return token
    return None


def open_tokenizer(spec: ModelDir) -> Tokenizer:
    """Load `tokenizer.json` with plain `tokenizers`, truncating at `spec.max_length`.

    Truncation keeps the head of a message: chat messages state their intent first, and
    training truncates the same way (the HF default), so both sides see the same tokens.
    Padding is done per batch by `Classifier`, to the longest sequence only.
    """
    try:
        tokenizer = Tokenizer.from_file(str(spec.tokenizer_path))
    except Exception as exc:  # tokenizers raises plain Exception on malformed files
        raise ModelLoadError(
            spec.tokenizer_path, f"cannot be read as a fast tokenizer ({exc})"
        ) from exc
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=spec.max_length)
    return tokenizer


def pad_id(spec: ModelDir, tokenizer: Tokenizer) -> int:
    """Id of the padding token; masked out by attention, so 0 is a safe fallback."""
    if spec.pad_token is not None:
        token_id = tokenizer.token_to_id(spec.pad_token)
        if token_id is not None:
            return token_id
    for token in ("[PAD]", "<pad>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return 0


def check_session(spec: ModelDir, session: ort.InferenceSession, tokenizer: Tokenizer) -> None:
    """Check the ONNX graph against config and tokenizer with two one-token probe runs.

    The runtime wheel has no `onnx` package to read initializer shapes, so the embedding
    size is checked the way it would fail in production: by looking up the tokenizer's
    highest token id (an out-of-range id makes the embedding Gather fail).
    """
    names = {node.name for node in session.get_inputs()}
    unknown = names - KNOWN_INPUTS
    if "input_ids" not in names or unknown:
        raise ModelLoadError(
            spec.onnx_path,
            f"inputs must be input_ids, attention_mask[, token_type_ids]; got {sorted(names)}",
        )
    if "logits" not in {node.name for node in session.get_outputs()}:
        raise ModelLoadError(spec.onnx_path, "has no output named 'logits'")

    logits = _probe(session, names, 0)
    if logits is None:
        raise ModelLoadError(spec.onnx_path, "a one-token probe inference failed")
    if logits.shape != (1, len(spec.labels)):
        raise ModelLoadError(
            spec.path / "config.json",
            f"id2label has {len(spec.labels)} labels but model.onnx outputs logits of shape "
            f"{list(logits.shape[1:])} per text",
        )

    tokens = tokenizer.get_vocab_size(with_added_tokens=True)
    if (
        spec.vocab_size is not None
        and not spec.vocab_size - EMBEDDING_SLACK < tokens <= spec.vocab_size
    ):
        raise ModelLoadError(
            spec.tokenizer_path,
            f"has {tokens} tokens but config.json vocab_size is {spec.vocab_size} "
            "(tokenizer does not belong to this model)",
        )
    if _probe(session, names, tokens - 1) is None:
        raise ModelLoadError(
            spec.tokenizer_path,
            f"has {tokens} tokens but the embedding table in model.onnx is smaller "
            "(tokenizer does not belong to this model)",
        )


def _probe(session: ort.InferenceSession, names: set[str], token_id: int) -> np.ndarray | None:
    ids = np.array([[token_id]], dtype=np.int64)
    feed = {"input_ids": ids}
    if "attention_mask" in names:
        feed["attention_mask"] = np.ones_like(ids)
    if "token_type_ids" in names:
        feed["token_type_ids"] = np.zeros_like(ids)
    try:
        return session.run(["logits"], feed)[0]
    except Exception:  # onnxruntime raises its own Fail/InvalidArgument types
        return None
