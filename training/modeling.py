"""Load a base encoder with a fresh classification head, and its fast tokenizer.

Eager attention on purpose: the TorchScript ONNX export of eager attention is the graph
ONNX Runtime's transformer optimiser recognises and fuses (SDPA exports do not fuse).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from training.base_models import BaseModel, go_offline_if_local


class ModelLoadFailed(RuntimeError):
    """The base model or tokenizer could not be loaded; says which and why."""


def problem_type(multi_label: bool) -> str:
    return "multi_label_classification" if multi_label else "single_label_classification"


def load_tokenizer(base: BaseModel, max_length: int) -> Any:
    """The base model's *fast* tokenizer (``classifier`` reads its tokenizer.json)."""
    from transformers import AutoTokenizer

    go_offline_if_local(base)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base.source, use_fast=True)
    except (OSError, ValueError) as error:
        raise ModelLoadFailed(f"cannot load a tokenizer from {base.source!r}: {error}") from None
    if not tokenizer.is_fast:
        raise ModelLoadFailed(
            f"{base.source!r} has no fast tokenizer (tokenizer.json); classifier needs one"
        )
    # What we train with is what inference truncates to (also read by optimum users).
    tokenizer.model_max_length = max_length
    return tokenizer


def load_classifier_model(base: BaseModel, labels: Sequence[str], multi_label: bool) -> Any:
    """An ``AutoModelForSequenceClassification`` for ``labels`` on top of the base encoder."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    go_offline_if_local(base)
    previous = hf_logging.get_verbosity()
    # "Some weights were newly initialized" is expected: the head is new by design.
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            base.source,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            problem_type=problem_type(multi_label),
            attn_implementation="eager",
            ignore_mismatched_sizes=True,  # a base that already has a head of another size
        )
    except (OSError, ValueError) as error:
        raise ModelLoadFailed(f"cannot load base model {base.source!r}: {error}") from None
    finally:
        hf_logging.set_verbosity(previous)
    logging.getLogger(__name__).debug("loaded %s", type(model).__name__)
    return model


def load_finetuned(directory: str) -> tuple[Any, Any]:
    """Reload a model + tokenizer written by ``save_pretrained`` (eager attention)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        directory, attn_implementation="eager"
    )
    tokenizer = AutoTokenizer.from_pretrained(directory, use_fast=True)
    return model.eval(), tokenizer
