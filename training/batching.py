"""Turn examples into padded tensor batches cheaply on a CPU.

Chat messages are short and vary a lot in length, so padding every batch to the longest
message of the dataset would waste most of the compute. Batches are padded only to their
own longest message (dynamic padding), and training batches are built from
length-sorted chunks of a shuffled order (length grouping): similar lengths share a
batch, yet every epoch sees a different order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from classifier import normalize
from training.augment import augment
from training.data_loading import Example

#: Batches per length-sorted chunk: bigger = less padding, smaller = more randomness.
MEGABATCH_FACTOR = 50


def label_matrix(
    examples: Sequence[Example], labels: Sequence[str], multi_label: bool
) -> np.ndarray:
    """Single-label: class ids ``[n]``; multi-label: 0/1 floats ``[n, num_labels]``."""
    index = {label: i for i, label in enumerate(labels)}
    if multi_label:
        matrix = np.zeros((len(examples), len(labels)), dtype=np.float32)
        for row, example in enumerate(examples):
            for label in example.labels:
                matrix[row, index[label]] = 1.0
        return matrix
    return np.array([index[example.labels[0]] for example in examples], dtype=np.int64)


@dataclass
class Batch:
    """Tensors ready for the model, plus the positions of its examples."""

    inputs: dict[str, Any]
    targets: Any
    indices: list[int]


class BatchEncoder:
    """Normalises (discord-v1) and tokenizes texts the way inference will."""

    def __init__(self, tokenizer: Any, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.input_names = [
            name
            for name in ("input_ids", "attention_mask", "token_type_ids")
            if name in tokenizer.model_input_names
        ]

    def encode(self, texts: Sequence[str], return_tensors: str = "pt") -> dict[str, Any]:
        encoded = self.tokenizer(
            [normalize(text) for text in texts],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors=return_tensors,
        )
        return {name: encoded[name] for name in self.input_names}

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Token counts (after truncation), for length grouping."""
        encoded = self.tokenizer(
            [normalize(text) for text in texts], truncation=True, max_length=self.max_length
        )
        return [len(ids) for ids in encoded["input_ids"]]


def length_grouped_order(
    lengths: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """Batches of indices: shuffle, sort each mega-batch by length, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * MEGABATCH_FACTOR
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: lengths[i], reverse=True)
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def sequential_order(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Evaluation batches: sorted by length (least padding), every index exactly once."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class TrainingBatches:
    """An epoch-indexed iterable of training batches, reproducible from (seed, epoch)."""

    def __init__(
        self,
        encoder: BatchEncoder,
        examples: Sequence[Example],
        targets: np.ndarray,
        batch_size: int,
        seed: int,
        augment_probability: float = 0.0,
    ):
        self.encoder = encoder
        self.texts = [example.text for example in examples]
        self.targets = targets
        self.batch_size = batch_size
        self.seed = seed
        self.augment_probability = augment_probability
        self.lengths = encoder.lengths(self.texts)

    def __len__(self) -> int:
        return (len(self.texts) + self.batch_size - 1) // self.batch_size

    def epoch(self, epoch: int) -> Iterator[Batch]:
        import torch

        rng = random.Random(self.seed * 1000 + epoch)
        for indices in length_grouped_order(self.lengths, self.batch_size, rng):
            texts = [self.texts[i] for i in indices]
            if self.augment_probability:
                texts = [
                    augment(text, rng) if rng.random() < self.augment_probability else text
                    for text in texts
                ]
            yield Batch(
                inputs=self.encoder.encode(texts),
                targets=torch.from_numpy(self.targets[indices]),
                indices=indices,
            )


def predict_logits(
    model: Any, encoder: BatchEncoder, texts: Sequence[str], batch_size: int
) -> np.ndarray:
    """PyTorch logits for ``texts`` in their original order (eval mode, no grad)."""
    import torch

    model.eval()
    logits = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    lengths = encoder.lengths(texts)
    with torch.inference_mode():
        for indices in sequential_order(lengths, batch_size):
            inputs = encoder.encode([texts[i] for i in indices])
            logits[indices] = model(**inputs).logits.float().numpy()
    return logits
