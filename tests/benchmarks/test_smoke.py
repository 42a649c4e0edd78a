"""Smoke test of the benchmark suite (issue 6): every piece runs on the tiny model, untimed.

Only structure and sanity are checked (keys, positive rates, fractions in range, every
message stored); speed is the suite's job, not the test's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import report
from benchmarks.__main__ import main
from benchmarks.ceiling import macs_per_message, ops_per_message
from benchmarks.workload import (
    MEDIAN_TOKENS,
    P90_TOKENS,
    _Counter,
    build_workload,
    sample_lengths,
)


def test_length_distribution_matches_its_quantiles() -> None:
    lengths = sample_lengths(20_000, seed=6)
    assert lengths.min() >= 3 and lengths.max() <= 500
    assert abs(np.median(lengths) - MEDIAN_TOKENS) <= 1
    assert abs(np.percentile(lengths, 90) - P90_TOKENS) <= 4
    assert np.array_equal(lengths, sample_lengths(20_000, seed=6))  # fixed seed, same mix


def test_texts_have_the_drawn_token_lengths(tiny_model_dir: Path) -> None:
    tokenizer = tiny_model_dir / "tokenizer.json"
    workload = build_workload(200, tokenizer, seed=3, max_length=128)
    assert len(workload.texts) == 200
    assert _Counter(tokenizer).lengths(workload.texts) == workload.lengths
    target = sample_lengths(200, seed=3)
    exact = np.mean(np.asarray(workload.lengths) == target)
    assert exact > 0.95, exact  # only texts cut at Discord's 2,000 characters may differ
    assert all(len(t) <= 2000 for t in workload.texts)


def test_ops_per_message_counts_linear_and_attention_work() -> None:
    shape = {"layers": 6, "hidden": 768, "ffn": 3072, "labels": 7}
    one = macs_per_message(shape, 10)
    linear = 6 * 10 * (4 * 768 * 768 + 2 * 768 * 3072)
    assert one > linear  # plus attention and the head
    assert macs_per_message(shape, 20) > 2 * linear  # attention grows quadratically
    assert ops_per_message(shape, [10, 10]) == 2 * one


def test_suite_runs_end_to_end_on_the_tiny_model(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.json"
    argv = [
        "--quick",
        "--model", str(tiny_model_dir),
        "--variants", "default",
        "--tokenizer", str(tiny_model_dir / "tokenizer.json"),
        "--messages", "40",
        "--latency-seconds", "0.5",
        "--e2e-messages", "30",
        "--cache", str(tmp_path / "cache"),
        "--out", str(out),
        "--diagnostics",
        "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| model | runtime | msgs/s |" in printed
    assert "| target (issue 6) |" in printed

    results = json.loads(out.read_text())
    for key in ("command", "machine", "workload", "ceiling", "variants", "e2e", "targets"):
        assert key in results, key
    assert results["workload"]["reference"]["full_length_tokens"]["p50"] > 0
    assert results["ceiling"]["shapes"]["32x64"]["ceiling_gops"] > 0

    (variant,) = results["variants"]
    assert variant["key"] == "default" and variant["ops_per_msg"] > 0
    assert set(variant["rows"]) == set(report.RUNNERS)
    for runner, row in variant["rows"].items():
        assert "error" not in row, (runner, row)
        assert row["throughput"]["msgs_per_s"] > 0
        assert row["latency"]["n"] > 0 and row["latency"]["p99_ms"] >= row["latency"]["p50_ms"] >= 0
        half = 0.5 * row["throughput"]["msgs_per_s"]
        assert row["latency"]["arrival_rate"] == pytest.approx(half, abs=0.01)
        assert row["peak_rss_mb"] > 0
        assert row["tokenizer"][report.TOKENIZER_KEY[runner]] > 0
        assert 0 < row["ceiling_fraction"] <= 1, (runner, row["ceiling_fraction"])
    assert variant["rows"]["torch"]["x_pytorch_b1"] == 1.0
    project = variant["rows"]["project"]
    assert project["latency"]["mean_batch_messages"] >= 1
    assert 0 <= project["throughput"]["padding_ratio"] < 1
    assert project["op_profile"]["op_share"]  # ORT profile parsed

    e2e = results["e2e"]
    assert e2e["stored_rows"] == e2e["messages_sent"] > 30
    assert e2e["bot_errors"] == 0
    assert e2e["full_load"]["messages"] == 30
    assert e2e["full_load"]["msgs_per_s"] > 0
    assert e2e["half_load"]["receipt_to_stored"]["n"] > 0
    assert e2e["full_load"]["loop_lag"]["p99_ms"] is not None
    assert e2e["peak_rss_mb"] > 0

    names = {t["target"] for t in results["targets"]}
    assert any("10x" in n for n in names) and any("event-loop lag" in n for n in names)
    for target in results["targets"]:
        assert target["pass"] in (True, False)
        assert math.isfinite(target["value"])
