"""``python -m training {build,train,export,evaluate,tiny}``.

Training arguments come from defaults, then ``--config FILE`` (YAML or TOML), then
per-field flags (``--epochs 3``, ``--no-class-weights``) and ``--set key=value``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.arguments import (
    ConfigError,
    TrainingArguments,
    build_arguments,
    field_type,
    load_config_file,
    parse_set_overrides,
)

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "default.yaml"


def _add_training_flags(parser: argparse.ArgumentParser, *, skip: Sequence[str] = ()) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="YAML or TOML file of training arguments (default: training/configs/default.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="set_items",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any training argument (repeatable)",
    )
    group = parser.add_argument_group("training arguments (override the config file)")
    for f in dataclasses.fields(TrainingArguments):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = field_type(f.name)
        help_text = f.metadata.get("help", "")
        if kind is bool:
            group.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            metavar = "A,B,..." if typing.get_origin(kind) is list else f.name.upper()
            group.add_argument(
                flag, dest=f.name, default=argparse.SUPPRESS, metavar=metavar, help=help_text
            )


def _training_arguments(
    ns: argparse.Namespace, base: dict[str, Any] | None = None
) -> TrainingArguments:
    """Defaults < ``base`` (e.g. a checkpoint's saved args) < --config < flags < --set."""
    values: dict[str, Any] = dict(base or {})
    config = ns.config
    if config is None and not base and DEFAULT_CONFIG.is_file():
        config = DEFAULT_CONFIG
    if config is not None:
        values.update(load_config_file(config))
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    for name in names:
        if name in vars(ns):
            values[name] = getattr(ns, name)
    values.update(parse_set_overrides(ns.set_items))
    return build_arguments(None, values)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training", description="Fine-tune, evaluate and export chat classifiers."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser(
        "build", help="data -> train -> evaluate -> export -> verify -> model dir"
    )
    build.add_argument(
        "--out", dest="output_dir", default=argparse.SUPPRESS, help="model directory to write"
    )
    _add_training_flags(build)

    train = sub.add_parser("train", help="fine-tune only; writes a PyTorch checkpoint directory")
    train.add_argument("--out", required=True, type=Path, help="checkpoint directory to write")
    _add_training_flags(train, skip=("output_dir",))

    export = sub.add_parser("export", help="export + verify + evaluate a `train` checkpoint")
    export.add_argument(
        "--checkpoint", required=True, type=Path, help="directory written by `train`"
    )
    export.add_argument("--out", dest="output_dir", required=True, help="model directory to write")
    _add_training_flags(export)

    evaluate = sub.add_parser("evaluate", help="score any model directory (through classifier)")
    evaluate.add_argument("--model", required=True, type=Path, help="model directory")
    evaluate.add_argument("--data", required=True, type=Path, help="labelled .jsonl/.csv/.parquet")
    evaluate.add_argument(
        "--split", default=None, help="only rows with this split value (e.g. test)"
    )
    evaluate.add_argument(
        "--out", type=Path, default=None, help="write metrics.json, REPORT.md, plots/"
    )
    evaluate.add_argument("--text-column", default="text")
    evaluate.add_argument("--label-column", default="label")
    evaluate.add_argument("--strict", action="store_true", help="fail on labels the model lacks")
    evaluate.add_argument("--threads", type=int, default=1)
    evaluate.add_argument(
        "--by",
        type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
        default=[],
        metavar="COLUMN[,COLUMN]",
        help="also break accuracy and macro-F1 down by these columns (e.g. lang,server)",
    )
    evaluate.add_argument(
        "--examples", type=int, default=3, help="example texts per confusion in the report"
    )

    sub.add_parser(
        "tiny", help="tiny random model dir (see python -m training.tiny --help)", add_help=False
    )
    return parser


def _known_errors() -> tuple[type[BaseException], ...]:
    from classifier import ModelLoadError
    from training.base_models import BaseModelError
    from training.data_loading import DataError
    from training.export import ExportError
    from training.modeling import ModelLoadFailed
    from training.verification import VerificationError

    return (
        ConfigError,
        DataError,
        BaseModelError,
        ModelLoadFailed,
        ExportError,
        VerificationError,
        ModelLoadError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["tiny"]:
        from training.tiny import main as tiny_main

        return tiny_main(argv[1:])
    ns = make_parser().parse_args(argv)
    try:
        return _run(ns)
    except _known_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(ns: argparse.Namespace) -> int:
    from training import pipeline

    if ns.command == "build":
        pipeline.build(_training_arguments(ns))
    elif ns.command == "train":
        pipeline.train_only(_training_arguments(ns), ns.out)
    elif ns.command == "export":
        saved = ns.checkpoint / "training_args.yaml"
        base = load_config_file(saved) if saved.is_file() else None
        pipeline.export_checkpoint(_training_arguments(ns, base), ns.checkpoint)
    elif ns.command == "evaluate":
        pipeline.evaluate_directory(
            ns.model,
            ns.data,
            split=ns.split,
            out=ns.out,
            text_column=ns.text_column,
            label_column=ns.label_column,
            strict=ns.strict,
            threads=ns.threads,
            examples=ns.examples,
            by=ns.by,
        )
    return 0
