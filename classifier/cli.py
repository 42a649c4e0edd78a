"""Command line: `python -m classifier predict --model DIR [TEXT ...]` and `... info --model DIR`.

With no TEXT, `predict` reads stdin one line at a time: a line that parses as a JSON object
with a string `text` field is taken as JSONL (its `id`, if any, is echoed back), any other
line is the text itself; empty lines are skipped. Output is one JSON object per text, in
input order, flushed after every chunk of lines so long inputs stream.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

from classifier.model import Classifier
from classifier.model_dir import ModelLoadError

CHUNK_LINES = 64


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        model = Classifier.load(args.model, threads=args.threads, sessions=1)
    except ModelLoadError as exc:
        print(f"error: bad model directory: {exc}", file=sys.stderr)
        return 2
    if args.command == "info":
        _write(sys.stdout, [_info(model)])
        return 0
    # Undecodable input bytes and lone surrogates must not kill a long stream.
    for stream, errors in ((sys.stdin, "replace"), (sys.stdout, "backslashreplace")):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=errors)
    interactive = not args.text and sys.stdin.isatty()
    records = [{"text": text} for text in args.text] if args.text else _read_lines(sys.stdin)
    chunk_size = 1 if interactive else args.chunk
    try:
        for chunk in _chunks(records, chunk_size):
            predictions = model.predict([record["text"] for record in chunk])
            _write(
                sys.stdout,
                [_output(r, p.to_dict()) for r, p in zip(chunk, predictions, strict=True)],
            )
    except BrokenPipeError:  # e.g. `| head -1`: the reader is gone, nothing left to do
        sys.stderr.close()
        return 0
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m classifier", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="classify texts from the arguments or stdin")
    predict.add_argument(
        "--model", required=True, help="model directory (see docs/architecture.md)"
    )
    predict.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    predict.add_argument("--chunk", type=int, default=CHUNK_LINES, help="stdin lines per batch")
    predict.add_argument("text", nargs="*", help="texts to classify (default: read stdin)")
    info = commands.add_parser("info", help="print the model's labels, version and settings")
    info.add_argument("--model", required=True)
    info.add_argument("--threads", type=int, default=1)
    return parser


def _read_lines(stream: TextIO) -> Iterator[dict[str, Any]]:
    for line in stream:
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        yield _parse_line(line)


def _parse_line(line: str) -> dict[str, Any]:
    if line.lstrip().startswith("{"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("text"), str):
            record = {"text": obj["text"]}
            if "id" in obj:
                record["id"] = obj["id"]
            return record
    return {"text": line}


def _chunks(records: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, max(size, 1))):
        yield chunk


def _output(record: dict[str, Any], prediction: dict[str, Any]) -> dict[str, Any]:
    out = {"id": record["id"]} if "id" in record else {}
    return {**out, "text": record["text"], **prediction}


def _info(model: Classifier) -> dict[str, Any]:
    return {
        "path": str(model.path),
        "version": model.version,
        "labels": list(model.labels),
        "multi_label": model.multi_label,
        "thresholds": model.thresholds,
        "max_length": model.max_length,
        "metrics": model.metrics,
    }


def _write(stream: TextIO, objects: Iterable[dict[str, Any]]) -> None:
    stream.write("".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objects))
    stream.flush()
