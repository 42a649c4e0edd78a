"""Fixtures for the training tests: small labelled data files and a tiny BERT base dir."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.training.chat_data import chat_rows, write_jsonl


@pytest.fixture(scope="session")
def chat_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A single-label JSONL file with a fixed train/test split (112 rows)."""
    return write_jsonl(tmp_path_factory.mktemp("data") / "chat.jsonl", chat_rows())


@pytest.fixture(scope="session")
def multilabel_chat_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Multi-label rows: every message has its label, some get a second one."""
    rng = random.Random(3)
    rows = chat_rows(per_label=12)
    for row in rows:
        labels = [row["label"]]
        if row["label"] == "question" and rng.random() < 0.5:
            labels.append("bug_report")
        if row["label"] == "spam" and rng.random() < 0.5:
            labels.append("toxic")
        row["label"] = labels
    return write_jsonl(tmp_path_factory.mktemp("data") / "multi.jsonl", rows)


@pytest.fixture(scope="session")
def tiny_bert_base(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A tiny random BertModel saved with save_pretrained (no head, no ONNX): a "local
    directory" base model like the MiniLM package's folder, with token_type_ids."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = tmp_path_factory.mktemp("tiny-bert-base")
    tokenizer = BertTokenizerFast(vocab_file=str(tiny_model_dir / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
