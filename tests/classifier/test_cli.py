"""`python -m classifier` end to end, in a subprocess like a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "classifier", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def _lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def _check_record(record: dict, labels: set[str]) -> None:
    assert {"text", "label", "confidence", "scores", "uncertain", "model_version"} <= set(record)
    assert record["label"] in labels and set(record["scores"]) == labels
    assert record["model_version"] == "tiny-distilbert-single-seed0"


LABELS = {"question", "answer", "comment", "bug_report", "suggestion", "spam", "toxic"}


def test_echo_into_predict_prints_one_json_line(tiny_model_dir: Path) -> None:
    """`echo "anyone know why pip hangs?" | python -m classifier predict --model DIR`"""
    result = subprocess.run(
        f'echo "anyone know why pip hangs?" | "{sys.executable}" -m classifier predict --model "{tiny_model_dir}"',
        shell=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    (record,) = _lines(result.stdout)
    assert record["text"] == "anyone know why pip hangs?"
    _check_record(record, LABELS)


def test_texts_as_arguments(tiny_model_dir: Path) -> None:
    result = _run(["predict", "--model", str(tiny_model_dir), "hello there", "FREE NITRO", ""])
    assert result.returncode == 0, result.stderr
    records = _lines(result.stdout)
    assert [r["text"] for r in records] == ["hello there", "FREE NITRO", ""]
    for record in records:
        _check_record(record, LABELS)


def test_stdin_plain_lines_and_jsonl_stream_in_order(tiny_model_dir: Path) -> None:
    lines = [
        f"plain line {i}" if i % 2 else json.dumps({"id": i, "text": f"json {i}"})
        for i in range(150)
    ]
    stdin = "\n".join([*lines[:70], "", '{"no_text": 1}', *lines[70:]]) + "\n"
    result = _run(["predict", "--model", str(tiny_model_dir)], stdin=stdin)
    assert result.returncode == 0, result.stderr
    records = _lines(result.stdout)
    want = [f"plain line {i}" if i % 2 else f"json {i}" for i in range(150)]
    want.insert(70, '{"no_text": 1}')  # a JSON object without "text" is just text
    assert [r["text"] for r in records] == want
    assert records[0]["id"] == 0 and "id" not in records[1]
    for record in records:
        _check_record(record, LABELS)


def test_bad_model_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"garbage")
    result = _run(["predict", "--model", str(tmp_path), "hi"])
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: bad model directory:") and "tokenizer.json" in line


def test_info(tiny_multilabel_model_dir: Path) -> None:
    result = _run(["info", "--model", str(tiny_multilabel_model_dir)])
    assert result.returncode == 0, result.stderr
    (info,) = _lines(result.stdout)
    assert info["multi_label"] is True and set(info["labels"]) == LABELS
