"""Broken model directories fail at load with a `ModelLoadError` naming the file at fault."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from classifier import Classifier, ModelLoadError


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _load_error(path: Path) -> ModelLoadError:
    with pytest.raises(ModelLoadError) as info:
        Classifier.load(path, sessions=1)
    assert isinstance(info.value, ValueError)
    return info.value


def test_missing_directory(tmp_path: Path) -> None:
    error = _load_error(tmp_path / "nope")
    assert "does not exist" in str(error)


def test_missing_model_onnx(model_copy: Path) -> None:
    (model_copy / "model.onnx").unlink()
    error = _load_error(model_copy)
    assert (
        error.path.name == "model.onnx" and "model.onnx" in str(error) and "missing" in str(error)
    )


def test_truncated_model_onnx(model_copy: Path) -> None:
    onnx = model_copy / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[: onnx.stat().st_size // 2])
    error = _load_error(model_copy)
    assert error.path.name == "model.onnx" and "not a loadable ONNX model" in str(error)


def test_model_onnx_that_is_not_protobuf(model_copy: Path) -> None:
    (model_copy / "model.onnx").write_text("this is not an onnx file\n" * 10)
    assert _load_error(model_copy).path.name == "model.onnx"


def test_empty_model_onnx(model_copy: Path) -> None:
    (model_copy / "model.onnx").write_bytes(b"")
    error = _load_error(model_copy)
    assert error.path.name == "model.onnx" and "empty" in str(error)


def test_missing_config(model_copy: Path) -> None:
    (model_copy / "config.json").unlink()
    assert _load_error(model_copy).path.name == "config.json"


def test_config_not_json(model_copy: Path) -> None:
    (model_copy / "config.json").write_text("{ not json")
    error = _load_error(model_copy)
    assert error.path.name == "config.json" and "not valid JSON" in str(error)


def test_config_without_id2label(model_copy: Path) -> None:
    _edit_json(model_copy / "config.json", lambda c: (c.pop("id2label"), c.pop("label2id")))
    error = _load_error(model_copy)
    assert error.path.name == "config.json" and "id2label" in str(error)


def test_label_count_differs_from_model_outputs(model_copy: Path) -> None:
    def five_labels(config: dict) -> None:
        config["id2label"] = {str(i): f"l{i}" for i in range(5)}
        config["label2id"] = {f"l{i}": i for i in range(5)}

    _edit_json(model_copy / "config.json", five_labels)
    (model_copy / "classifier.json").unlink()  # its thresholds name the old labels
    error = _load_error(model_copy)
    assert error.path.name == "config.json"
    assert "5 labels" in str(error) and "model.onnx" in str(error)


def test_missing_tokenizer(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").unlink()
    assert _load_error(model_copy).path.name == "tokenizer.json"


def test_corrupt_tokenizer(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").write_text('{"version": "1.0", "model": 3}')
    error = _load_error(model_copy)
    assert error.path.name == "tokenizer.json" and "fast tokenizer" in str(error)


def _grow_tokenizer(model_dir: Path, extra: int) -> None:
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.add_tokens([f"extra_token_{i}" for i in range(extra)])
    tokenizer.save(str(model_dir / "tokenizer.json"))


def test_tokenizer_bigger_than_config_vocab(model_copy: Path) -> None:
    _grow_tokenizer(model_copy, 50)
    error = _load_error(model_copy)
    assert error.path.name == "tokenizer.json" and "vocab_size" in str(error)


def test_tokenizer_bigger_than_onnx_embedding(model_copy: Path) -> None:
    """Without vocab_size in config.json, the probe against the ONNX embedding catches it."""
    _grow_tokenizer(model_copy, 50)
    _edit_json(model_copy / "config.json", lambda c: c.pop("vocab_size"))
    error = _load_error(model_copy)
    assert error.path.name == "tokenizer.json" and "embedding" in str(error)


def test_bad_threshold(model_copy: Path) -> None:
    _edit_json(model_copy / "classifier.json", lambda c: c["thresholds"].update(spam=1.5))
    error = _load_error(model_copy)
    assert error.path.name == "classifier.json" and "spam" in str(error)


def test_threshold_for_unknown_label(model_copy: Path) -> None:
    _edit_json(model_copy / "classifier.json", lambda c: c["thresholds"].update(nope=0.5))
    assert "unknown label" in str(_load_error(model_copy))


def test_max_length_beyond_position_embeddings(model_copy: Path) -> None:
    _edit_json(model_copy / "classifier.json", lambda c: c.update(max_length=4096))
    error = _load_error(model_copy)
    assert error.path.name == "classifier.json" and "max_position_embeddings" in str(error)


def test_other_preprocessing_is_refused(model_copy: Path) -> None:
    _edit_json(model_copy / "classifier.json", lambda c: c.update(preprocessing="raw"))
    assert "preprocessing" in str(_load_error(model_copy))


def test_defaults_without_classifier_json(model_copy: Path) -> None:
    """Contract defaults: version from the ONNX hash, thresholds 0.5, max_length from config."""
    (model_copy / "classifier.json").unlink()
    model = Classifier.load(model_copy, sessions=1)
    assert model.version.startswith("model-") and len(model.version) == len("model-") + 12
    assert model.thresholds == dict.fromkeys(model.labels, 0.5)
    assert model.max_length == 128
    assert model.metrics == {}
