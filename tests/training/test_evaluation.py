"""Metrics, thresholds and the export checks on hand-made numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.evaluation import calibration, evaluate_predictions, public_metrics, summary_table
from training.report import confusion_examples, write_report
from training.thresholds import tune_thresholds
from training.verification import verify_export

LABELS = ["a", "b", "c"]


def _single_case() -> tuple[np.ndarray, np.ndarray]:
    # truth: a a a b b c ; predictions: a a b b b a
    targets = np.array([0, 0, 0, 1, 1, 2])
    probs = np.array(
        [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.3, 0.6, 0.1],
         [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3]]
    )  # fmt: skip
    return probs, targets


def test_single_label_metrics_match_hand_computation() -> None:
    probs, targets = _single_case()
    m = evaluate_predictions(probs, targets, LABELS, multi_label=False)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # a: P=2/3 R=2/3 F1=2/3; b: P=2/3 R=1 F1=0.8; c: P=0 R=0 F1=0
    assert m["per_label"]["a"]["f1"] == pytest.approx(2 / 3)
    assert m["per_label"]["b"]["f1"] == pytest.approx(0.8)
    assert m["per_label"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    assert m["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 0.8) / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["worst_confusions"][0]["count"] == 1
    assert m["roc_auc"]["a"] is not None and 0 <= m["macro_roc_auc"] <= 1
    assert "macro-F1=0.4889" in summary_table(m)


def test_multi_label_metrics() -> None:
    targets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0]], dtype=float)
    probs = np.array([[0.9, 0.2, 0.1], [0.7, 0.4, 0.1], [0.1, 0.1, 0.8], [0.2, 0.9, 0.3]])
    m = evaluate_predictions(probs, targets, LABELS, multi_label=True)
    assert m["accuracy"] == pytest.approx(3 / 4)  # exact-match; row 2 misses "b"
    assert m["per_label"]["b"]["recall"] == pytest.approx(0.5)
    assert m["confusion_matrix"]["b"] == [[2, 0], [1, 1]]
    lowered = evaluate_predictions(probs, targets, LABELS, True, thresholds={"b": 0.3})
    assert lowered["accuracy"] == 1.0


def test_expected_calibration_error() -> None:
    perfect = calibration(
        np.array([0.95] * 20 + [0.55] * 20), np.array([1] * 19 + [0] + [1] * 11 + [0] * 9), 10
    )
    assert perfect["ece"] == pytest.approx(0.0, abs=1e-9)
    overconfident = calibration(np.array([0.9] * 10), np.array([1] * 5 + [0] * 5, dtype=float), 10)
    assert overconfident["ece"] == pytest.approx(0.4)
    assert sum(b["count"] for b in overconfident["bins"]) == 10


def test_single_label_thresholds_reach_the_precision_target() -> None:
    rng = np.random.default_rng(0)
    n = 400
    targets = rng.integers(0, 3, n)
    confidence = rng.uniform(0.34, 1.0, n)
    # correct exactly when confidence is high: precision target reachable at ~0.6
    predicted = np.where(confidence > 0.6, targets, (targets + 1) % 3)
    probs = np.full((n, 3), 0.0)
    for i in range(n):
        probs[i] = (1 - confidence[i]) / 2
        probs[i, predicted[i]] = confidence[i]
    thresholds = tune_thresholds(
        probs, targets, LABELS, False, precision_target=0.9, floor=0.3, ceiling=0.95
    )
    for label, j in zip(LABELS, range(3), strict=True):
        keep = (probs.argmax(1) == j) & (probs.max(1) >= thresholds[label])
        assert (targets[keep] == j).mean() >= 0.9
        assert 0.5 <= thresholds[label] <= 0.65  # and not needlessly strict


def test_thresholds_clamped_and_defaulted_without_evidence() -> None:
    probs = np.array([[0.9, 0.05, 0.05]] * 3)
    got = tune_thresholds(probs, np.array([1, 1, 1]), LABELS, False, floor=0.4, ceiling=0.8)
    assert got == {"a": 0.4, "b": 0.4, "c": 0.4}  # fewer than 5 predictions per label
    empty = tune_thresholds(np.zeros((0, 3)), np.zeros(0), LABELS, True, floor=0.4, ceiling=0.8)
    assert empty == {"a": 0.5, "b": 0.5, "c": 0.5}


def test_multi_label_thresholds_maximise_f1() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, (200, 3)).astype(float)
    # scores separate the classes around 0.3 instead of 0.5
    probs = np.where(
        truth > 0, rng.uniform(0.31, 0.6, truth.shape), rng.uniform(0.0, 0.29, truth.shape)
    )
    got = tune_thresholds(probs, truth, LABELS, True, floor=0.05, ceiling=0.95)
    for value in got.values():
        assert 0.28 <= value <= 0.32


def _verify(**overrides: object):
    rng = np.random.default_rng(2)
    torch_logits = rng.normal(size=(16, 3)).astype(np.float32)
    test = rng.normal(size=(200, 3)).astype(np.float32) * 4
    targets = test.argmax(1)
    kwargs = {
        "torch_logits": torch_logits,
        "raw_fp32_logits": torch_logits + 1e-6,
        "fused_fp32_logits": torch_logits - 2e-6,
        "fp32_test_logits": test,
        "int8_test_logits": test + 1e-3,
        "test_targets": targets,
        "labels": LABELS,
        "multi_label": False,
        "parity_tolerance": 1e-4,
        "min_int8_agreement": 0.99,
        "max_int8_f1_drop": 0.01,
    }
    kwargs.update(overrides)
    return verify_export(**kwargs), kwargs


def test_verification_passes_a_faithful_export() -> None:
    report, _ = _verify()
    assert report.passed, report.problems
    assert report.raw_fp32_max_abs_diff < 1e-4 and report.int8_agreement == 1.0


def test_verification_rejects_drift_and_bad_int8() -> None:
    _, kwargs = _verify()
    drifted, _ = _verify(fused_fp32_logits=kwargs["torch_logits"] + 5e-4)
    assert not drifted.passed and "fused fp32 ONNX logits differ" in drifted.problems[0]
    swapped, _ = _verify(raw_fp32_logits=kwargs["torch_logits"][:, ::-1].copy())
    assert not swapped.passed and "raw fp32" in swapped.problems[0]
    noisy = kwargs["fp32_test_logits"] + np.random.default_rng(3).normal(scale=3, size=(200, 3))
    bad_int8, _ = _verify(int8_test_logits=noisy.astype(np.float32))
    assert any("int8 agrees with fp32 on only" in p for p in bad_int8.problems)
    assert any("macro-F1 is" in p for p in bad_int8.problems)
    shape, _ = _verify(raw_fp32_logits=kwargs["torch_logits"][:, :2])
    assert "shape" in shape.problems[0]


def test_report_files(tmp_path: Path) -> None:
    probs, targets = _single_case()
    m = evaluate_predictions(probs, targets, LABELS, multi_label=False, thresholds={"a": 0.6})
    texts = [f"text {i}" for i in range(6)]
    examples = confusion_examples(texts, targets, probs, LABELS, limit=2)
    assert examples == {("a", "b"): ["text 2"], ("c", "a"): ["text 5"]}
    report = write_report(tmp_path, m, title="T", thresholds={"a": 0.6}, examples=examples)
    text = report.read_text()
    assert "| `a` |" in text and "**a → b**: 1" in text and "“text 2”" in text
    for plot in ("confusion_matrix", "roc", "precision_recall", "reliability"):
        path = tmp_path / "plots" / f"{plot}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{plot}.png" in text
    import json

    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test"] == json.loads(json.dumps(public_metrics(m)))


def test_int8_settings_try_the_configured_pair_first() -> None:
    from training.export import int8_settings

    assert int8_settings(True, False, fallback=False) == [(True, False)]
    tried = int8_settings(True, False, fallback=True)
    assert tried[0] == (True, False) and len(tried) == len(set(tried)) == 4
    assert int8_settings(False, True, fallback=True)[0] == (False, True)


def test_int8_scopes_quantise_what_they_say(tiny_bert_base: Path, tmp_path: Path) -> None:
    from training.base_models import resolve_base_model
    from training.export import INT8_SCOPES, export_all, op_counts, quantize_int8
    from training.modeling import load_classifier_model, load_tokenizer

    base = resolve_base_model(str(tiny_bert_base))
    model = load_classifier_model(base, ["a", "b"], multi_label=False).eval()
    exported = export_all(model, load_tokenizer(base, 32), tmp_path, opset=17, log=lambda _: None)
    ops = {}
    for scope in INT8_SCOPES:
        target = tmp_path / f"{scope}.onnx"
        quantize_int8(exported.fp32, target, per_channel=True, reduce_range=False, scope=scope)
        ops[scope] = op_counts(target)
    assert ops["all"]["QAttention"] == 2 and ops["all"]["MatMul"] == 0
    assert ops["matmul-only"]["QAttention"] == 0 and ops["matmul-only"]["Attention"] == 2
    assert ops["attention-only"]["QAttention"] == 2
    assert not {"MatMulInteger", "DynamicQuantizeMatMul"} & set(ops["attention-only"])
    # Only the two FFN up-projections (one per layer) stay fp32.
    assert ops["keep-ffn-up-fp32"]["MatMul"] == 2 and ops["keep-ffn-up-fp32"]["QAttention"] == 2


def test_group_scores_break_results_down_by_a_column() -> None:
    from training.evaluation import group_scores, group_table

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]])
    targets = np.array([0, 1, 1, 1, 0])  # third is wrong
    scores = group_scores(probs, targets, ["en", "en", "de", "de", None], multi_label=False)
    assert list(scores) == ["en", "de", "(missing)"]  # largest group first
    assert scores["en"] == {"n": 2, "accuracy": 1.0, "macro_f1": 1.0}
    assert scores["de"]["accuracy"] == 0.5
    assert scores["de"]["macro_f1"] == pytest.approx(1 / 3)  # labels 0 (P=0) and 1 (F1 2/3)
    assert scores["(missing)"]["n"] == 1
    table = group_table("lang", scores)
    assert table.splitlines()[0].startswith("lang") and "0.5000" in table

    multi = group_scores(
        np.array([[0.9, 0.6], [0.1, 0.2]]), np.array([[1, 0], [0, 0]]), ["a", "a"],
        multi_label=True, thresholds=np.array([0.5, 0.7]),
    )  # fmt: skip
    assert multi["a"]["accuracy"] == 1.0  # 0.6 < its 0.7 threshold, so label 1 is not predicted
