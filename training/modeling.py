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


POOLINGS = ("cls", "mean")


def load_classifier_model(
    base: BaseModel, labels: Sequence[str], multi_label: bool, pooling: str = "cls"
) -> Any:
    """An ``AutoModelForSequenceClassification`` for ``labels`` on top of the base encoder.

    ``pooling="mean"`` feeds the head the attention-masked mean of the last hidden states
    instead of the first token (see `use_mean_pooling`).
    """
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
    if pooling == "mean":
        use_mean_pooling(model)
    elif pooling != "cls":
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    return model


def use_mean_pooling(model: Any) -> Any:
    """Make a BERT/DistilBERT sequence classifier pool by masked mean instead of [CLS].

    Sentence-transformer checkpoints such as all-MiniLM-L6-v2 were trained for mean pooling,
    so their [CLS] state is a poor summary. Patched on the instance (the weights and the head
    are the stock ones, so `save_pretrained` and optimum keep working); the choice is stored
    as ``config.chatlabel_pooling`` and re-applied by `load_finetuned`. The ONNX export
    traces this forward, so the shipped graph pools the same way.
    """
    import types

    import torch
    from transformers.modeling_outputs import SequenceClassifierOutput

    kind = model.config.model_type
    if kind not in ("bert", "distilbert"):
        raise ValueError(f"mean pooling supports bert and distilbert, not {kind!r}")

    def forward(self: Any, input_ids: Any = None, attention_mask: Any = None,
                token_type_ids: Any = None, **_: Any) -> Any:  # fmt: skip
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if kind == "bert":
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )[0]
        else:
            hidden = self.distilbert(input_ids=input_ids, attention_mask=attention_mask)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        if kind == "distilbert":
            pooled = torch.nn.functional.relu(self.pre_classifier(pooled))
        logits = self.classifier(self.dropout(pooled))
        return SequenceClassifierOutput(logits=logits)

    model.forward = types.MethodType(forward, model)
    model.config.chatlabel_pooling = "mean"
    return model


def load_finetuned(directory: str) -> tuple[Any, Any]:
    """Reload a model + tokenizer written by ``save_pretrained`` (eager attention)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        directory, attn_implementation="eager"
    )
    if getattr(model.config, "chatlabel_pooling", "cls") == "mean":
        use_mean_pooling(model)
    tokenizer = AutoTokenizer.from_pretrained(directory, use_fast=True)
    return model.eval(), tokenizer
