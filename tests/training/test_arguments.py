"""TrainingArguments: YAML/TOML config files, CLI flags and --set overrides, validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from training.arguments import (
    DEFAULT_LABELS,
    ConfigError,
    TrainingArguments,
    build_arguments,
    load_config_file,
    parse_set_overrides,
)
from training.cli import DEFAULT_CONFIG, _training_arguments, make_parser


def test_every_field_is_documented() -> None:
    undocumented = [
        f.name
        for f in dataclasses.fields(TrainingArguments)
        if len(f.metadata.get("help", "")) < 15
    ]
    assert undocumented == []


def test_yaml_config_is_loaded_and_typed(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("epochs: 3\nlearning_rate: 2e-5\nlabels: [a, b]\nclass_weights: false\n")
    args = build_arguments(config)
    assert (args.epochs, args.learning_rate, args.labels, args.class_weights) == (
        3,
        2e-5,
        ["a", "b"],
        False,
    )
    assert args.batch_size == TrainingArguments().batch_size  # untouched fields keep defaults


def test_toml_config_with_or_without_table(tmp_path: Path) -> None:
    flat = tmp_path / "flat.toml"
    flat.write_text('epochs = 2\nbase_model = "distilbert-base-uncased"\nmulti_label = true\n')
    table = tmp_path / "table.toml"
    table.write_text('[training]\nepochs = 4\nlabels = ["x", "y", "z"]\n')
    assert load_config_file(flat) == {
        "epochs": 2,
        "base_model": "distilbert-base-uncased",
        "multi_label": True,
    }
    args = build_arguments(table)
    assert (args.epochs, args.labels) == (4, ["x", "y", "z"])


def test_unknown_key_in_config_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("epochs: 3\nlearnin_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learnin_rate"):
        load_config_file(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs: three\n", "epochs"),
        ("epochs: 0\n", "epochs must be > 0"),
        ("validation_fraction: 1.5\n", "validation_fraction"),
        ("labels: [a, a]\n", "duplicates"),
        ("[not yaml\n", "cannot parse"),
    ],
)
def test_bad_config_values_fail_clearly(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        build_arguments(config)


def test_wrong_config_suffix_and_missing_file(tmp_path: Path) -> None:
    other = tmp_path / "c.ini"
    other.write_text("epochs=1")
    with pytest.raises(ConfigError, match=r"\.yaml, \.yml or \.toml"):
        load_config_file(other)
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "missing.yaml")


def test_set_overrides_are_coerced() -> None:
    values = parse_set_overrides(["epochs=7", "labels=x, y", "quantize=no", "learning-rate=1e-4"])
    assert values == {"epochs": 7, "labels": ["x", "y"], "quantize": False, "learning_rate": 1e-4}
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_overrides(["epochs"])
    with pytest.raises(ConfigError, match="unknown training argument 'epoch'"):
        parse_set_overrides(["epoch=3"])


def test_cli_precedence_config_then_flags_then_set(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("epochs = 2\nbatch_size = 8\nseed = 5\n")
    ns = make_parser().parse_args(
        ["build", "--config", str(config), "--epochs", "3", "--no-class-weights",
         "--set", "seed=9", "--out", "models/x"]
    )  # fmt: skip
    args = _training_arguments(ns)
    assert (args.epochs, args.batch_size, args.seed) == (3, 8, 9)
    assert args.class_weights is False
    assert args.output_dir == "models/x"


def test_default_config_file_is_valid_and_used_without_config() -> None:
    assert DEFAULT_CONFIG.is_file()
    from_file = build_arguments(DEFAULT_CONFIG)
    assert tuple(from_file.labels) == DEFAULT_LABELS
    assert from_file.base_model == "minilm"
    ns = make_parser().parse_args(["build"])
    assert _training_arguments(ns) == from_file


def test_saved_arguments_load_back(tmp_path: Path) -> None:
    args = build_arguments(None, {"epochs": 2, "labels": ["a", "b"], "multi_label": True})
    args.save(tmp_path / "args.yaml")
    assert build_arguments(tmp_path / "args.yaml") == args
    assert "epochs" in args.describe() and "multi_label" in args.describe()


def test_optional_fields_accept_unset_values() -> None:
    assert parse_set_overrides(["split_seed=7"]) == {"split_seed": 7}
    assert parse_set_overrides(["split_seed=none"]) == {"split_seed": None}
    assert TrainingArguments().split_seed is None
    with pytest.raises(ConfigError, match="split_seed"):
        parse_set_overrides(["split_seed=seven"])
