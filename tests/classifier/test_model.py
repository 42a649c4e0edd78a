"""`Classifier.predict`: scores, thresholds, batching, hostile input, thread safety."""

from __future__ import annotations

import json
import math
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from classifier import Classifier, Prediction

TEXTS = [
    "anyone know why pip hangs?",
    "hi",
    "FREE NITRO https://discord.gg/abc click now!!!!!!",
    "you are all idiots",
    "it would be great to have a #channel for memes <:pog:123>",
    "the bot crashes when I run /play ```py\nTraceback (most recent call last)\n```",
    "use a venv, see https://docs.python.org/3/library/venv.html " * 20,
    "ok",
]

HOSTILE = [
    "",
    "   \n\t  ",
    "x" * 20_000,
    "word " * 4_000,
    "nul\x00bytes\x00here",
    "lone \ud800 surrogate \udfff",
    "z" + "\u0336\u0335\u0334" * 300 + "algo",
    "مرحبا، هل يمكن لأحد مساعدتي؟",
    "שלום, מישהו יכול לעזור?",
    "😂🔥💯👀",
    "\u202eevil rtl override",
    "<@1><@2><@3>" * 500,
]


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> Classifier:
    return Classifier.load(tiny_model_dir, threads=1, sessions=2)


def _assert_valid(prediction: Prediction, model: Classifier) -> None:
    assert prediction.label in model.labels
    assert set(prediction.scores) == set(model.labels)
    assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in prediction.scores.values())
    assert prediction.confidence == prediction.scores[prediction.label]
    assert prediction.model_version == model.version


def test_contract_attributes(model: Classifier) -> None:
    assert model.labels == (
        "question",
        "answer",
        "comment",
        "bug_report",
        "suggestion",
        "spam",
        "toxic",
    )
    assert model.version == "tiny-distilbert-single-seed0"
    assert model.multi_label is False
    assert set(model.thresholds) == set(model.labels)
    assert model.max_length == 128


def test_single_label_scores_are_a_distribution(model: Classifier) -> None:
    predictions = model.predict(TEXTS)
    assert len(predictions) == len(TEXTS)
    for prediction in predictions:
        _assert_valid(prediction, model)
        assert math.isclose(sum(prediction.scores.values()), 1.0, abs_tol=1e-6)
        assert prediction.label == max(prediction.scores, key=prediction.scores.__getitem__)
        threshold = model.thresholds[prediction.label]
        assert prediction.uncertain == (prediction.confidence < threshold)
        assert prediction.labels == (() if prediction.uncertain else (prediction.label,))


def test_texts_get_different_scores(model: Classifier) -> None:
    """Guards the tests below: if every text scored alike, mix-ups would go unnoticed."""
    scores = {tuple(round(v, 6) for v in p.scores.values()) for p in model.predict(TEXTS)}
    assert len(scores) == len(TEXTS)


def test_batch_equals_one_by_one_in_input_order(model: Classifier) -> None:
    batched = model.predict(TEXTS)
    for text, prediction in zip(TEXTS, batched, strict=True):
        (alone,) = model.predict([text])
        assert alone.label == prediction.label
        for label in model.labels:
            assert alone.scores[label] == pytest.approx(prediction.scores[label], abs=1e-5)


def test_token_budget_splits_batches_by_length(tiny_model_dir: Path) -> None:
    small = Classifier.load(tiny_model_dir, sessions=1, max_batch_tokens=256)
    big = Classifier.load(tiny_model_dir, sessions=1, max_batch_tokens=100_000)
    texts = [("word " * n).strip() for n in (1, 90, 2, 60, 3, 120, 4)] * 3
    split, stats = small.predict_with_stats(texts)
    whole, whole_stats = big.predict_with_stats(texts)
    assert stats.runs > 1 and whole_stats.runs == 1
    assert stats.real_tokens == whole_stats.real_tokens
    assert stats.padded_tokens < whole_stats.padded_tokens  # length-sorted runs pad less
    for a, b in zip(split, whole, strict=True):
        assert a.label == b.label
        assert a.confidence == pytest.approx(b.confidence, abs=1e-5)


def test_empty_input_list(model: Classifier) -> None:
    assert model.predict([]) == []


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_gets_a_valid_prediction(model: Classifier, text: str) -> None:
    (prediction,) = model.predict([text])
    _assert_valid(prediction, model)


def test_empty_and_whitespace_classify_like_the_empty_message(model: Classifier) -> None:
    empty, blank = model.predict(["", " \n\t "])
    assert empty == blank


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("a single string", "not a single string"),
        (["ok", None], r"texts\[1\] must be str, got NoneType"),
        (["ok", b"bytes"], r"texts\[1\] must be str, got bytes"),
        ([42], r"texts\[0\] must be str, got int"),
        (42, "sequence of str"),
    ],
)
def test_non_text_input_is_a_clear_type_error(model: Classifier, bad: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        model.predict(bad)  # type: ignore[arg-type]


def test_predict_is_thread_safe(model: Classifier) -> None:
    texts = [f"{text} #{i}" for i, text in enumerate(TEXTS * 6)]
    expected = [p.scores for p in model.predict(texts)]
    chunks = [texts[i::5] for i in range(5)]
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(model.predict, chunks * 4))
    for i, predictions in enumerate(results):
        for text, prediction in zip(chunks[i % 5], predictions, strict=True):
            want = expected[texts.index(text)]
            assert prediction.scores == pytest.approx(want, abs=1e-5)


def test_sessions_run_side_by_side(tiny_model_dir: Path) -> None:
    """Two threads can run the model at once, on one shared ORT session (one copy of weights)."""
    model = Classifier.load(tiny_model_dir, sessions=2)
    barrier = threading.Barrier(2, timeout=10)
    original = model._run

    seen = set()

    def run_at_barrier(session, encodings):
        barrier.wait()  # breaks (BrokenBarrierError) unless both slots are busy at once
        seen.add(id(session))
        return original(session, encodings)

    model._run = run_at_barrier  # type: ignore[method-assign]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(model.predict, [["a"], ["b"]]))
    assert [len(r) for r in results] == [1, 1]
    assert len(seen) == 1


@pytest.fixture
def multilabel_copy(tiny_multilabel_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_multilabel_model_dir, tmp_path / "multi"))


def _set_thresholds(model_dir: Path, thresholds: dict[str, float]) -> None:
    path = model_dir / "classifier.json"
    extra = json.loads(path.read_text())
    extra["thresholds"] = thresholds
    path.write_text(json.dumps(extra))


def test_multi_label_uses_sigmoid_and_per_label_thresholds(multilabel_copy: Path) -> None:
    _set_thresholds(multilabel_copy, {"question": 0.0, "spam": 1.0, "toxic": 0.45})
    model = Classifier.load(multilabel_copy, sessions=1)
    assert model.multi_label
    assert model.thresholds["question"] == 0.0 and model.thresholds["answer"] == 0.5
    sums = set()
    for prediction in model.predict(TEXTS):
        _assert_valid(prediction, model)
        sums.add(round(sum(prediction.scores.values()), 3))
        assert "question" in prediction.labels
        assert "spam" not in prediction.labels
        assert prediction.labels == tuple(
            label for label in model.labels if prediction.scores[label] >= model.thresholds[label]
        )
        assert prediction.label == max(prediction.scores, key=prediction.scores.__getitem__)
        assert prediction.uncertain == (prediction.confidence < model.thresholds[prediction.label])
    assert sums != {1.0}  # independent sigmoids, not a softmax


def test_single_label_thresholds_decide_uncertain(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = Path(shutil.copytree(tiny_model_dir, tmp_path / "single"))
    _set_thresholds(model_dir, dict.fromkeys(Classifier.load(model_dir, sessions=1).labels, 0.0))
    sure = Classifier.load(model_dir, sessions=1).predict(TEXTS)
    assert all(not p.uncertain and p.labels == (p.label,) for p in sure)
    _set_thresholds(model_dir, dict.fromkeys(Classifier.load(model_dir, sessions=1).labels, 1.0))
    unsure = Classifier.load(model_dir, sessions=1).predict(TEXTS)
    assert all(p.uncertain and p.labels == () for p in unsure)
    assert [p.label for p in sure] == [p.label for p in unsure]


def test_prediction_to_dict_is_json_ready(model: Classifier) -> None:
    (prediction,) = model.predict(["hello"])
    data = json.loads(json.dumps(prediction.to_dict()))
    assert data["label"] == prediction.label and data["model_version"] == model.version
    assert set(data) == {"label", "confidence", "scores", "uncertain", "labels", "model_version"}


def test_plan_runs_groups_by_length_under_the_token_budget() -> None:
    from classifier.model import MAX_BATCH_SIZE, plan_runs

    lengths = [30, 5, 6, 100, 5, 31]
    runs = plan_runs(lengths, max_tokens=64)
    assert sorted(i for run in runs for i in run) == list(range(len(lengths)))  # each row once
    assert runs == [[1, 4, 2], [0, 5], [3]]  # shortest first; the 100-token row runs alone
    for run in runs[:-1]:
        assert max(lengths[i] for i in run) * len(run) <= 64
    capped = plan_runs([1] * (MAX_BATCH_SIZE + 3), max_tokens=10_000)
    assert [len(run) for run in capped] == [MAX_BATCH_SIZE, 3]
