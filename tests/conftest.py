"""Shared session fixtures: tiny model directories built once per test session (offline).

The directories are shared by every test in the session: treat them as read-only and
`shutil.copytree` one before editing files in it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random single-label DistilBERT model directory (7 default labels)."""
    from training.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture(scope="session")
def tiny_multilabel_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random multi-label DistilBERT model directory (7 default labels)."""
    from training.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-multilabel") / "model", multi_label=True)
