"""The end-to-end steps behind the CLI: train, package (export + verify + write), build, evaluate.

``build`` = load data -> train (resumable, in ``<out>.work``) -> export -> verify ->
evaluate through `classifier` -> write ``<out>.staging`` -> atomic rename to ``<out>``.
A failed check leaves ``<out>`` untouched (previous model or nothing) and removes the
staging folder; the finished training state stays in ``<out>.work`` so a rerun skips
straight to the export.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.arguments import TrainingArguments
from training.base_models import resolve_base_model
from training.batching import BatchEncoder, label_matrix
from training.data_loading import (
    Dataset,
    Example,
    load_dataset,
    load_from_arguments,
    read_records,
)
from training.evaluation import (
    evaluate_predictions,
    group_scores,
    group_table,
    public_metrics,
    summary_table,
)
from training.model_card import package_versions, render_model_card
from training.model_dir import (
    default_version,
    discard,
    headline_metrics,
    promote,
    staging_path,
    write_classifier_json,
    write_hf_files,
)
from training.report import confusion_examples, write_report
from training.thresholds import tune_thresholds
from training.verification import VerificationError, VerificationReport, ort_session
from training.verified_export import VerifiedExport, export_verified, spread_sample

Log = Callable[[str], None]


def _print(message: str) -> None:
    print(message, flush=True)


@dataclass
class PackageResult:
    """What `package_model` wrote and measured."""

    out: Path
    version: str
    thresholds: dict[str, float]
    metrics: dict[str, Any]
    verification: VerificationReport


def _texts(examples: Sequence[Example]) -> list[str]:
    return [example.text for example in examples]


def classifier_probabilities(model: Any, texts: Sequence[str], chunk: int = 256) -> np.ndarray:
    """Scores from ``classifier.Classifier.predict`` as a ``[n, labels]`` array."""
    from tqdm.auto import tqdm

    rows: list[list[float]] = []
    labels = model.labels
    for start in tqdm(
        range(0, len(texts), chunk), desc="scoring", unit="chunk", leave=False, disable=None
    ):
        for prediction in model.predict(list(texts[start : start + chunk])):
            rows.append([prediction.scores[label] for label in labels])
    return np.array(rows, dtype=np.float64).reshape(len(texts), len(labels))


def _optimum_check(
    directory: Path, encoder: BatchEncoder, texts: Sequence[str], threads: int
) -> str | None:
    """Load the directory with optimum; its logits must equal a plain ORT run on the same batch.

    Same batch on purpose: dynamic int8 scales activations per batch, so padding a text
    with other texts changes its logits slightly.
    """
    try:
        from optimum.onnxruntime import ORTModelForSequenceClassification
    except ImportError:
        return None  # optimum is optional at run time; the tests check this path
    inputs = encoder.encode(list(texts), return_tensors="pt")
    try:
        model = ORTModelForSequenceClassification.from_pretrained(str(directory))
        logits = model(**inputs).logits.detach().numpy()
    except Exception as error:  # optimum raises many types
        return f"optimum cannot load/run the model directory: {error}"
    session = ort_session(directory / "model.onnx", threads)
    wanted = {node.name for node in session.get_inputs()}
    feed = {name: value.numpy() for name, value in inputs.items() if name in wanted}
    expected = session.run(["logits"], feed)[0]
    if logits.shape != expected.shape or float(np.abs(logits - expected).max()) > 1e-3:
        return "optimum's ORTModelForSequenceClassification gives different logits than model.onnx"
    return None


def package_model(
    args: TrainingArguments,
    dataset: Dataset,
    model: Any,
    tokenizer: Any,
    training_info: dict[str, Any],
    out: Path,
    log: Log = _print,
) -> PackageResult:
    """Export, verify, evaluate and write ``out`` atomically (see module docstring)."""
    from classifier import Classifier

    threads = args.effective_threads()
    labels, multi = dataset.labels, dataset.multi_label
    base = resolve_base_model(args.base_model)
    version = args.version or default_version(base.tag, dataset.sha256)
    test_split = "test" if dataset.test else "validation"
    test = dataset.test or dataset.validation
    if not test:
        raise VerificationError("no test or validation rows to verify and evaluate the export on")
    test_texts = _texts(test)
    test_targets = label_matrix(test, labels, multi)

    staging = staging_path(out)
    discard(staging)
    staging.mkdir(parents=True)
    try:
        with tempfile.TemporaryDirectory(prefix=out.name + ".onnx-", dir=out.parent) as scratch:
            verified = export_verified(
                args, model, tokenizer, test_texts, test_targets, labels, multi, Path(scratch), log
            )
            shutil.copyfile(verified.shipped, staging / "model.onnx")
            if args.keep_fp32 and verified.int8 is not None:
                shutil.copyfile(verified.fp32, staging / "model_fp32.onnx")
        write_hf_files(staging, model, tokenizer, args.max_length)
        write_classifier_json(
            staging,
            version=version,
            max_length=args.max_length,
            thresholds=dict.fromkeys(labels, 0.5),
            metrics={},
        )

        # Score through the library the bot uses: what we report is what will run.
        served = Classifier.load(staging, threads=threads, sessions=1)
        test_probs = classifier_probabilities(served, test_texts)
        _check_library_matches(
            served,
            staging / "model.onnx",
            BatchEncoder(tokenizer, args.max_length),
            spread_sample(test_texts, args.parity_samples),
            threads,
        )
        validation_targets = label_matrix(dataset.validation, labels, multi)
        validation_probs = classifier_probabilities(served, _texts(dataset.validation))
        del served
        thresholds = tune_thresholds(
            validation_probs,
            validation_targets,
            labels,
            multi,
            precision_target=args.precision_target,
            floor=args.threshold_floor,
            ceiling=args.threshold_ceiling,
        )
        metrics = evaluate_predictions(
            test_probs,
            test_targets,
            labels,
            multi,
            thresholds=thresholds,
            calibration_bins=args.calibration_bins,
        )
        log(
            f"\nTest metrics ({test_split}, shipped model via classifier):\n"
            + summary_table(metrics)
        )
        log("Thresholds: " + ", ".join(f"{k}={v:.3f}" for k, v in thresholds.items()))
        problem = _optimum_check(
            staging, BatchEncoder(tokenizer, args.max_length), test_texts[:8], threads
        )
        if problem:
            verified.report.problems.append(problem)
            raise VerificationError(problem)

        write_classifier_json(
            staging,
            version=version,
            max_length=args.max_length,
            thresholds=thresholds,
            metrics=headline_metrics(metrics, test_split),
        )
        args.save(staging / "training_args.yaml")
        validation_metrics = (
            public_metrics(
                evaluate_predictions(
                    validation_probs, validation_targets, labels, multi, thresholds=thresholds
                )
            )
            if len(validation_probs)
            else None
        )
        _write_documents(
            staging,
            args,
            dataset,
            base,
            version,
            metrics,
            thresholds,
            verified,
            training_info,
            examples=None
            if multi
            else confusion_examples(
                test_texts, test_targets, test_probs, labels, args.report_examples
            ),
            validation_metrics=validation_metrics,
            test_split=test_split,
        )
        promote(staging, out)
    except BaseException:
        discard(staging)
        raise
    log(f"\nWrote {out} (version {version}).")
    return PackageResult(out, version, thresholds, metrics, verified.report)


def _write_documents(
    staging: Path,
    args: TrainingArguments,
    dataset: Dataset,
    base: Any,
    version: str,
    metrics: dict[str, Any],
    thresholds: dict[str, float],
    verified: VerifiedExport,
    training_info: dict[str, Any],
    *,
    examples: dict[tuple[str, str], list[str]] | None,
    validation_metrics: dict[str, Any] | None,
    test_split: str,
) -> None:
    """metrics.json, REPORT.md, plots/ and the model card README.md."""
    report = verified.report
    history = training_info.get("history", [])
    history_md = "\n".join(
        ["| epoch | train loss | validation macro-F1 | seconds |", "|---|---|---|---|"]
        + [
            f"| {_epoch_name(h['epoch'])} | "
            f"{h['train_loss']:.4f} | {h['validation_macro_f1']:.4f} | "
            f"{h['seconds']:.0f} |"
            for h in history
        ]
    )
    verification = {**report.as_dict(), "fused_ops": verified.fused_ops, "int8": verified.int8}
    write_report(
        staging,
        metrics,
        title=f"Evaluation report: {version}",
        context=[
            ("version", f"`{version}`"),
            ("base model", f"`{base.hub_id}`"),
            ("data", f"`{args.data}` (sha256 `{dataset.sha256[:16]}…`)"),
            (
                "split scored",
                f"{test_split} ({metrics['n']} messages), shipped `model.onnx` via `classifier`",
            ),
            ("graph", f"int8 dynamic {verified.int8}" if verified.int8 else "fp32 fused"),
        ],
        data_summary=dataset.summary(),
        thresholds=thresholds,
        examples=examples,
        extra_sections=[
            ("Export verification", "```\n" + report.summary() + "\n```"),
            ("Training", history_md if history else "(no history recorded)"),
        ],
        extra_json={
            "validation": validation_metrics,
            "verification": verification,
            "training": training_info,
            "thresholds": thresholds,
            "data": {"path": str(args.data), "sha256": dataset.sha256},
        },
    )
    card = render_model_card(
        version=version,
        base_model=base.hub_id,
        base_source=base.source,
        labels=dataset.labels,
        multi_label=dataset.multi_label,
        data_path=str(args.data),
        data_sha256=dataset.sha256,
        data_summary=dataset.summary(),
        metrics=metrics,
        thresholds=thresholds,
        verification=verification,
        quantized=verified.int8 is not None,
        int8=verified.int8,
        versions=package_versions(),
        fused_ops=verified.fused_ops,
        training={
            **training_info,
            **{
                k: getattr(args, k)
                for k in ("learning_rate", "batch_size", "seed", "class_weights", "max_length")
            },
        },
    )
    (staging / "README.md").write_text(card, encoding="utf-8")


def _epoch_name(epoch: int) -> str:
    """History rows with a negative epoch are the weight average of the last -epoch epochs."""
    return str(epoch) if epoch > 0 else f"average of last {-epoch}"


def _check_library_matches(
    served: Any, model_path: Path, encoder: BatchEncoder, texts: Sequence[str], threads: int
) -> None:
    """`classifier` (tokenizers + ORT) must reproduce a direct ORT run of the same graph.

    One text at a time, so no padding is involved: dynamic int8 quantises activations per
    batch, so batch composition alone moves scores a little. Any difference left is a
    tokenization or preprocessing mismatch between training and inference.
    """
    from training.evaluation import probabilities

    session = ort_session(model_path, threads)
    wanted = {node.name for node in session.get_inputs()}
    worst = 0.0
    for text in texts:
        feed = {k: np.asarray(v, dtype=np.int64) for k, v in encoder.encode([text], "np").items()}
        logits = session.run(["logits"], {k: v for k, v in feed.items() if k in wanted})[0]
        direct = probabilities(logits, served.multi_label)[0]
        scores = served.predict([text])[0].scores
        library = np.array([scores[label] for label in served.labels])
        worst = max(worst, float(np.abs(direct - library).max()))
    if worst > 1e-4:
        raise VerificationError(
            f"classifier library scores differ from direct ONNX Runtime by up to {worst:.3g}: "
            "tokenization or preprocessing differ between training and inference"
        )


def _training_info(result: Any) -> dict[str, Any]:
    return {
        "epochs_run": sum(1 for record in result.history if record.get("epoch", 0) > 0),
        "best_epoch": result.best_epoch,
        "best_validation_macro_f1": result.best_validation_macro_f1,
        "history": result.history,
        "seconds": round(result.seconds, 1),
    }


def _load_data(args: TrainingArguments, log: Log) -> Dataset:
    dataset = load_from_arguments(args)
    log(dataset.summary())
    if not dataset.train:
        raise VerificationError("no training rows left after cleaning")
    return dataset


def build(args: TrainingArguments, log: Log = _print) -> PackageResult:
    """Data -> train -> export -> verify -> evaluate -> write ``args.output_dir``."""
    from training.trainer import train

    started = time.monotonic()
    out = Path(args.output_dir)
    log(args.describe())
    dataset = _load_data(args, log)
    work = out.with_name(out.name + ".work")
    result = train(args, dataset, work, log=log)
    info = _training_info(result)
    packaged = package_model(args, dataset, result.model, result.tokenizer, info, out, log)
    shutil.rmtree(work, ignore_errors=True)
    log(f"Build finished in {time.monotonic() - started:.0f}s.")
    return packaged


def train_only(args: TrainingArguments, out: Path, log: Log = _print) -> Path:
    """Train and write a PyTorch checkpoint directory (for a later `export`)."""
    from training.trainer import train

    log(args.describe())
    dataset = _load_data(args, log)
    work = out.with_name(out.name + ".work")
    result = train(args, dataset, work, log=log)
    staging = staging_path(out)
    discard(staging)
    shutil.copytree(result.checkpoint_dir, staging)
    args.save(staging / "training_args.yaml")
    (staging / "training_history.json").write_text(
        json.dumps(_training_info(result), indent=2) + "\n"
    )
    promote(staging, out)
    shutil.rmtree(work, ignore_errors=True)
    log(f"Wrote checkpoint {out} (best epoch {result.best_epoch}).")
    return out


def export_checkpoint(
    args: TrainingArguments, checkpoint: Path, log: Log = _print
) -> PackageResult:
    """Export/verify/write a model directory from a `train` checkpoint."""
    from training.modeling import load_finetuned

    if not (checkpoint / "config.json").is_file():
        raise VerificationError(f"{checkpoint} is not a checkpoint written by `training train`")
    log(args.describe())
    dataset = _load_data(args, log)
    model, tokenizer = load_finetuned(str(checkpoint))
    tokenizer.model_max_length = args.max_length
    history_file = checkpoint / "training_history.json"
    info = json.loads(history_file.read_text()) if history_file.is_file() else {}
    configured = list(model.config.id2label[i] for i in range(model.config.num_labels))
    if tuple(configured) != dataset.labels:
        raise VerificationError(
            f"checkpoint labels {configured} differ from the data's label set {list(dataset.labels)}"
        )
    return package_model(args, dataset, model, tokenizer, info, Path(args.output_dir), log)


def _threshold_array(model: Any) -> np.ndarray:
    """The model's per-label decision thresholds in label order (0.5 where unset)."""
    return np.array([(model.thresholds or {}).get(label, 0.5) for label in model.labels])


def evaluate_directory(
    model_dir: Path,
    data: Path,
    *,
    split: str | None = None,
    out: Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    strict: bool = False,
    threads: int = 1,
    examples: int = 3,
    by: Sequence[str] = (),
    log: Log = _print,
) -> dict[str, Any]:
    """Score any model directory through `classifier` on a labelled file.

    ``by`` names columns (e.g. ``lang``) to break accuracy and macro-F1 down by.
    """
    from classifier import Classifier

    model = Classifier.load(model_dir, threads=threads, sessions=1)
    dataset = load_dataset(
        data,
        text_column=text_column,
        label_column=label_column,
        labels=model.labels,
        multi_label=model.multi_label,
        strict=strict,
        select=split or "all",
    )
    log(dataset.summary())
    texts = _texts(dataset.test)
    targets = label_matrix(dataset.test, model.labels, model.multi_label)
    probs = classifier_probabilities(model, texts)
    metrics = evaluate_predictions(
        probs, targets, model.labels, model.multi_label, thresholds=model.thresholds
    )
    log(f"\n{model.version} on {data}{f' ({split})' if split else ''}:\n" + summary_table(metrics))
    if by:
        records = dict(read_records(data))
        metrics["groups"] = {}
        for column in by:
            values = [records[ex.row].get(column) for ex in dataset.test]
            scores = group_scores(
                probs, targets, values, model.multi_label,
                thresholds=_threshold_array(model) if model.multi_label else None,
            )  # fmt: skip
            metrics["groups"][column] = scores
            log("\n" + group_table(column, scores))
    if out is not None:
        report = write_report(
            out,
            metrics,
            title=f"Evaluation: {model.version}",
            context=[
                ("model", f"`{model_dir}`"),
                ("version", f"`{model.version}`"),
                ("data", f"`{data}` (sha256 `{dataset.sha256[:16]}…`)"),
                ("rows", f"{split or 'all'} ({len(texts)} messages)"),
            ],
            data_summary=dataset.summary(),
            thresholds=model.thresholds,
            examples=None
            if model.multi_label
            else confusion_examples(texts, targets, probs, model.labels, examples),
            extra_json={"model": str(model_dir), "version": model.version, "data": str(data)},
        )
        log(f"Report: {report}")
    return public_metrics(metrics)
