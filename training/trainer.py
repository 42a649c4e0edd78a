"""Fine-tune on a CPU with a plain PyTorch loop: AdamW, linear warm-up/decay, early stopping.

A plain loop (not HF Trainer) keeps the moving parts visible and cheap: dynamic padding,
length-grouped batches, class-weighted loss, per-epoch validation macro-F1, the best
epoch kept. Restartable: after every epoch the full state (weights, optimiser, scheduler,
RNG, history) goes to ``<work_dir>/last``; a new run with the same arguments and data
continues from there, a run with different ones starts cleanly from scratch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.arguments import TrainingArguments
from training.base_models import resolve_base_model
from training.batching import BatchEncoder, TrainingBatches, label_matrix, predict_logits
from training.data_loading import Dataset
from training.evaluation import macro_f1_from_logits
from training.modeling import load_classifier_model, load_finetuned, load_tokenizer

#: Arguments that change the trained weights; anything else (export, report) does not.
TRAINING_FIELDS = (
    "data",
    "text_column",
    "label_column",
    "split_column",
    "labels",
    "multi_label",
    "label_delimiter",
    "strict_labels",
    "validation_fraction",
    "test_fraction",
    "max_rows",
    "base_model",
    "max_length",
    "epochs",
    "learning_rate",
    "batch_size",
    "warmup_ratio",
    "weight_decay",
    "max_grad_norm",
    "freeze_embeddings",
    "class_weights",
    "label_smoothing",
    "pooling",
    "average_last_epochs",
    "early_stopping_patience",
    "augment_probability",
    "seed",
    "split_seed",
)


@dataclass
class TrainResult:
    """The best model (eval mode), its tokenizer and how training went."""

    model: Any
    tokenizer: Any
    checkpoint_dir: Path
    best_epoch: int
    best_validation_macro_f1: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    """Use exactly ``threads`` intra-op threads; one inter-op thread (no parallel ops)."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass


def fingerprint(args: TrainingArguments, dataset: Dataset) -> str:
    values = {name: getattr(args, name) for name in TRAINING_FIELDS}
    values["data_sha256"] = dataset.sha256
    blob = json.dumps(values, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def class_weight_tensor(dataset: Dataset, multi_label: bool) -> Any:
    """Inverse-frequency class weights (mean 1), or per-label pos_weight for BCE."""
    import torch

    counts = dataset.label_counts("train")
    n = len(dataset.train)
    k = len(dataset.labels)
    if multi_label:
        weights = [
            min(max((n - counts[label]) / counts[label], 1.0), 20.0) if counts[label] else 1.0
            for label in dataset.labels
        ]
    else:
        weights = [n / (k * counts[label]) if counts[label] else 1.0 for label in dataset.labels]
    return torch.tensor(weights, dtype=torch.float32)


def _optimizer(model: Any, args: TrainingArguments) -> Any:
    import torch

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    decay, plain = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (plain if name.endswith(no_decay) else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=args.learning_rate)


def _scheduler(optimizer: Any, total_steps: int, warmup_ratio: float) -> Any:
    import torch

    warmup = max(1, int(total_steps * warmup_ratio)) if warmup_ratio else 0

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        remaining = max(1, total_steps - warmup)
        return max(0.0, (total_steps - step) / remaining)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _update_average(model: Any, average: dict[str, Any] | None, count: int) -> tuple[dict[str, Any], int]:
    """Fold the model's current floating-point weights into a running mean."""
    current = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    if average is None:
        return current, 1
    count += 1
    for key, value in current.items():
        average[key].mul_((count - 1) / count).add_(value, alpha=1 / count)
    return average, count


def _save_best(model: Any, tokenizer: Any, directory: Path) -> None:
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)


def train(
    args: TrainingArguments, dataset: Dataset, work_dir: Path, log: Any = print
) -> TrainResult:
    """Fine-tune ``args.base_model`` on ``dataset.train``; return the best epoch's model."""
    import torch
    from tqdm.auto import tqdm

    started = time.monotonic()
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp = fingerprint(args, dataset)
    stamp_file = work_dir / "fingerprint.txt"
    state_file = work_dir / "last" / "state.pt"
    best_dir = work_dir / "best"
    if stamp_file.is_file() and stamp_file.read_text().strip() != stamp:
        log(f"Work dir {work_dir} holds a run with other arguments/data: starting afresh.")
        for child in ("last", "best"):
            shutil.rmtree(work_dir / child, ignore_errors=True)
    stamp_file.write_text(stamp + "\n")
    (work_dir / "last").mkdir(exist_ok=True)

    set_threads(args.effective_threads())
    seed_everything(args.seed)
    base = resolve_base_model(args.base_model)
    tokenizer = load_tokenizer(base, args.max_length)
    model = load_classifier_model(base, dataset.labels, dataset.multi_label, args.pooling)
    if args.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    encoder = BatchEncoder(tokenizer, args.max_length)

    targets = label_matrix(dataset.train, dataset.labels, dataset.multi_label)
    batches = TrainingBatches(
        encoder, dataset.train, targets, args.batch_size, args.seed, args.augment_probability
    )
    validation_texts = [example.text for example in dataset.validation]
    validation_targets = label_matrix(dataset.validation, dataset.labels, dataset.multi_label)

    weights = class_weight_tensor(dataset, dataset.multi_label) if args.class_weights else None
    if dataset.multi_label:
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=weights)
    else:
        loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=args.label_smoothing)

    optimizer = _optimizer(model, args)
    total_steps = len(batches) * args.epochs
    scheduler = _scheduler(optimizer, total_steps, args.warmup_ratio)

    history: list[dict[str, float]] = []
    start_epoch, best_f1, best_epoch, stale = 1, -1.0, 0, 0
    average: dict[str, Any] | None = None  # running mean of the last epochs' float weights
    averaged = 0
    average_from = args.epochs - args.average_last_epochs + 1 if args.average_last_epochs else None
    if state_file.is_file() and best_dir.is_dir():
        state = torch.load(state_file, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        history, best_f1, best_epoch, stale = (
            state["history"],
            state["best_f1"],
            state["best_epoch"],
            state["stale"],
        )
        start_epoch = state["epoch"] + 1
        average, averaged = state.get("average"), state.get("averaged", 0)
        if state.get("finished"):
            start_epoch = args.epochs + 1
        log(
            f"Resuming from {state_file} after epoch {state['epoch']} (best so far: "
            f"epoch {best_epoch}, validation macro-F1 {best_f1:.4f})."
        )

    log(
        f"Training {type(model).__name__} from {base.source} on {len(dataset.train)} messages "
        f"({len(batches)} batches/epoch, {torch.get_num_threads()} threads)."
    )
    finished = start_epoch > args.epochs
    for epoch in range(start_epoch, args.epochs + 1):
        epoch_started = time.monotonic()
        model.train()
        running, seen = 0.0, 0
        bar = tqdm(
            batches.epoch(epoch),
            total=len(batches),
            desc=f"epoch {epoch}/{args.epochs}",
            unit="batch",
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=1.0,
        )
        for batch in bar:
            logits = model(**batch.inputs).logits
            loss = loss_fn(logits, batch.targets)
            loss.backward()
            if args.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            running += loss.item() * len(batch.indices)
            seen += len(batch.indices)
            bar.set_postfix(loss=f"{running / seen:.4f}", refresh=False)
        bar.close()

        if validation_texts:
            logits = predict_logits(model, encoder, validation_texts, args.eval_batch_size)
            f1 = macro_f1_from_logits(logits, validation_targets, dataset.multi_label)
        else:  # no validation data: the last epoch is the best one
            f1 = float(epoch)
        record = {
            "epoch": epoch,
            "train_loss": running / max(seen, 1),
            "validation_macro_f1": f1 if validation_texts else math.nan,
            "seconds": time.monotonic() - epoch_started,
        }
        history.append(record)
        if average_from is not None and epoch >= average_from:
            average, averaged = _update_average(model, average, averaged)
        improved = f1 > best_f1
        if improved:
            best_f1, best_epoch, stale = f1, epoch, 0
            _save_best(model, tokenizer, best_dir)
        else:
            stale += 1
        finished = epoch == args.epochs or (
            args.early_stopping_patience and stale >= args.early_stopping_patience
        )
        _atomic_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch,
                "history": history,
                "best_f1": best_f1,
                "best_epoch": best_epoch,
                "stale": stale,
                "finished": bool(finished),
                "average": average,
                "averaged": averaged,
            },
            state_file,
        )
        log(
            f"epoch {epoch}: loss {record['train_loss']:.4f}, validation macro-F1 "
            f"{record['validation_macro_f1']:.4f}{' (best)' if improved else ''}, "
            f"{record['seconds']:.0f}s"
        )
        if finished and epoch < args.epochs:
            log(f"Early stopping: no better validation macro-F1 for {stale} epoch(s).")
        if finished:
            break

    if average is not None and averaged > 1 and validation_texts and not (best_dir / "averaged").exists():
        model.load_state_dict(average, strict=False)
        logits = predict_logits(model, encoder, validation_texts, args.eval_batch_size)
        f1 = macro_f1_from_logits(logits, validation_targets, dataset.multi_label)
        keep = f1 >= best_f1
        log(
            f"average of the last {averaged} epochs: validation macro-F1 {f1:.4f} "
            f"({'kept' if keep else f'not kept; epoch {best_epoch} is better'})"
        )
        if keep:
            best_f1, best_epoch = f1, -averaged
            _save_best(model, tokenizer, best_dir)
            (best_dir / "averaged").write_text(f"{averaged} {f1}\n")
            history.append({"epoch": -averaged, "train_loss": math.nan, "validation_macro_f1": f1,
                            "seconds": 0.0, "averaged": averaged})
    best_model, best_tokenizer = load_finetuned(str(best_dir))
    best_tokenizer.model_max_length = args.max_length
    return TrainResult(
        model=best_model,
        tokenizer=best_tokenizer,
        checkpoint_dir=best_dir,
        best_epoch=best_epoch,
        best_validation_macro_f1=best_f1 if validation_texts else math.nan,
        history=history,
        seconds=time.monotonic() - started,
    )
