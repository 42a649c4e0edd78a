"""Batching (length grouping, dynamic padding, normalisation) and augmentation."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from classifier import normalize
from training.augment import augment
from training.batching import BatchEncoder, TrainingBatches, label_matrix, length_grouped_order
from training.data_loading import Example


def test_length_grouped_order_covers_every_index_once_and_groups_lengths() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(3, 120) for _ in range(1000)]
    batches = length_grouped_order(lengths, batch_size=16, rng=random.Random(1))
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 10  # random batches would spread ~100 tokens
    again = length_grouped_order(lengths, batch_size=16, rng=random.Random(1))
    other = length_grouped_order(lengths, batch_size=16, rng=random.Random(2))
    assert batches == again and batches != other


def test_batches_are_padded_to_their_longest_and_normalised(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoder = BatchEncoder(tokenizer, max_length=16)
    texts = ["hi", "see <@123456789> at https://example.com/some/long/path?x=1", "word " * 50]
    examples = [Example(text, ("comment",), i) for i, text in enumerate(texts)]
    targets = label_matrix(examples, ["comment", "spam"], multi_label=False)
    batches = TrainingBatches(encoder, examples, targets, batch_size=1, seed=0)
    widths = sorted(batch.inputs["input_ids"].shape[1] for batch in batches.epoch(1))
    assert widths == sorted(batches.lengths) and max(widths) == 16  # truncated to max_length
    # inputs are exactly what tokenizing the normalised text gives
    encoded = encoder.encode([texts[1]])
    expected = tokenizer([normalize(texts[1])], truncation=True, max_length=16)["input_ids"]
    assert encoded["input_ids"].tolist() == expected


def test_label_matrix_single_and_multi() -> None:
    examples = [Example("x", ("b",), 1), Example("y", ("a", "c"), 2)]
    assert label_matrix(examples[:1], ["a", "b", "c"], False).tolist() == [1]
    assert label_matrix(examples, ["a", "b", "c"], True).tolist() == [[0, 1, 0], [1, 0, 1]]


def test_augmentation_changes_surface_only() -> None:
    rng = random.Random(0)
    text = "Could we get a channel for memes?"
    outputs = {augment(text, rng) for _ in range(200)}
    assert len(outputs) > 10
    for out in outputs:
        words = out.lower().replace("?", "").split()
        # at most one word edited (typo/drop) plus possibly one appended emoji/"lol"
        assert abs(len(words) - len(text.split())) <= 1
        assert out.strip()
