"""The ONNX directory agrees with PyTorch and with optimum's ORT loader (offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifier import Classifier, normalize
from training.tiny import build_tiny_model

TEXTS = [
    "anyone know why pip hangs?",
    "hey <@123> check https://github.com/org/repo/issues/1",
    "FREE NITRO discord.gg/xyz!!!!!!!",
    "```py\nprint('hi')\n``` does not work",
    "",
    "ok " * 200,  # longer than max_length: truncated the same way on both sides
]


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _torch_logits(model_dir: Path, texts: list[str]) -> tuple[np.ndarray, dict]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    inputs = tokenizer(
        [normalize(t) for t in texts],
        padding=True,
        truncation=True,
        max_length=128,
        return_tensors="pt",
    )
    with torch.no_grad():
        return model(**inputs).logits.numpy(), {k: v.numpy() for k, v in inputs.items()}


@pytest.fixture(scope="module")
def bert_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert") / "model", arch="bert", seed=3)


@pytest.mark.parametrize("arch", ["distilbert", "bert"])
def test_onnx_logits_match_pytorch(arch: str, tiny_model_dir: Path, bert_model_dir: Path) -> None:
    import onnxruntime as ort

    model_dir = tiny_model_dir if arch == "distilbert" else bert_model_dir
    expected, inputs = _torch_logits(model_dir, TEXTS)
    session = ort.InferenceSession(str(model_dir / "model.onnx"))
    feed = {node.name: inputs[node.name].astype(np.int64) for node in session.get_inputs()}
    (logits,) = session.run(["logits"], feed)
    np.testing.assert_allclose(logits, expected, atol=1e-4)

    # The library's own tokenization and padding give the same probabilities.
    scores = [
        list(p.scores.values()) for p in Classifier.load(model_dir, sessions=1).predict(TEXTS)
    ]
    np.testing.assert_allclose(np.array(scores), _softmax(expected.astype(np.float64)), atol=1e-5)


def test_optimum_loads_the_same_directory(tiny_model_dir: Path) -> None:
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ort_model = ORTModelForSequenceClassification.from_pretrained(tiny_model_dir)
    inputs = tokenizer(
        [normalize(t) for t in TEXTS],
        padding=True,
        truncation=True,
        max_length=128,
        return_tensors="pt",
    )
    optimum_logits = ort_model(**inputs).logits.detach().numpy()
    expected, _ = _torch_logits(tiny_model_dir, TEXTS)
    np.testing.assert_allclose(optimum_logits, expected, atol=1e-4)
    assert ort_model.config.id2label[0] == "question"


def test_tiny_model_directory_layout(tiny_model_dir: Path, tiny_multilabel_model_dir: Path) -> None:
    import json

    for name in (
        "model.onnx",
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "classifier.json",
    ):
        assert (tiny_model_dir / name).is_file(), name
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["problem_type"] == "single_label_classification"
    multi = json.loads((tiny_multilabel_model_dir / "config.json").read_text())
    assert multi["problem_type"] == "multi_label_classification"
    extra = json.loads((tiny_model_dir / "classifier.json").read_text())
    assert extra["preprocessing"] == "discord-v1" and extra["max_length"] == 128
    tok_config = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    assert tok_config["model_max_length"] == 128
    assert tok_config["tokenizer_class"] == "DistilBertTokenizer"


def test_tiny_build_is_deterministic(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again")
    first = Classifier.load(tiny_model_dir, sessions=1).predict(TEXTS)
    second = Classifier.load(again, sessions=1).predict(TEXTS)
    assert [p.scores for p in first] == [p.scores for p in second]


def test_markers_stay_whole_tokens(tiny_model_dir: Path) -> None:
    from tokenizers import Tokenizer

    from classifier.preprocess import MARKERS

    tokenizer = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    for marker in MARKERS:
        assert tokenizer.encode(f"a {marker} b").tokens == ["[CLS]", "a", marker, "b", "[SEP]"]
