"""Load a labelled file (JSONL, CSV/TSV, Parquet), clean it and split it.

Why so strict: a model trained on silently mangled data looks fine until it meets real
chat. So every row that is dropped is counted by reason, unknown labels can be made
fatal (``strict``), and every unreadable file fails with the line or byte that broke it.
Rows marked ``test`` in a ``split`` column are the fixed test split and never reach
training or validation.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classifier import normalize

JSONL_SUFFIXES = {".jsonl", ".ndjson"}
CSV_SUFFIXES = {".csv", ".tsv"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}
_LABEL_SEPARATORS = re.compile(r"[\s\-]+")


class DataError(ValueError):
    """The data file cannot be used; the message says which file, where and why."""


@dataclass(frozen=True)
class Example:
    """One cleaned, labelled message. ``labels`` has exactly one entry when single-label."""

    text: str
    labels: tuple[str, ...]
    row: int  # 1-based line (JSONL/CSV data row) or row index (Parquet), for messages


@dataclass
class LoadStats:
    """What happened to every row: kept, or dropped and why."""

    rows: int = 0
    empty_text: int = 0
    missing_label: int = 0
    duplicates: int = 0
    conflicting_duplicates: int = 0
    multiple_labels: int = 0
    unknown_labels: Counter[str] = field(default_factory=Counter)
    split_source: str = ""
    rows_without_split: int = 0

    @property
    def dropped(self) -> int:
        return (
            self.empty_text
            + self.missing_label
            + self.duplicates
            + self.multiple_labels
            + sum(self.unknown_labels.values())
        )


@dataclass
class Dataset:
    """Cleaned examples per split plus everything needed to describe them."""

    path: Path
    sha256: str
    labels: tuple[str, ...]
    multi_label: bool
    splits: dict[str, list[Example]]
    stats: LoadStats

    @property
    def train(self) -> list[Example]:
        return self.splits["train"]

    @property
    def validation(self) -> list[Example]:
        return self.splits["validation"]

    @property
    def test(self) -> list[Example]:
        return self.splits["test"]

    def label_counts(self, split: str) -> Counter[str]:
        return Counter(label for ex in self.splits[split] for label in ex.labels)

    def summary(self) -> str:
        """A plain-text table: loaded/dropped counts and per-label, per-split counts."""
        s = self.stats
        lines = [
            f"Data: {self.path} (sha256 {self.sha256[:12]})",
            f"  rows read            {s.rows}",
            f"  dropped: empty text  {s.empty_text}",
            f"  dropped: no label    {s.missing_label}",
            f"  dropped: duplicates  {s.duplicates} ({s.conflicting_duplicates} with another label)",
        ]
        if not self.multi_label:
            lines.append(f"  dropped: >1 label    {s.multiple_labels}")
        unknown = ", ".join(f"{k}={v}" for k, v in s.unknown_labels.most_common()) or "-"
        lines.append(f"  dropped: unknown     {sum(s.unknown_labels.values())} ({unknown})")
        kept = sum(len(v) for v in self.splits.values())
        lines.append(f"  kept                 {kept}")
        lines.append(f"  splits: {s.split_source}")
        if s.rows_without_split:
            lines.append(
                f"  rows with no split value (used for train/validation): {s.rows_without_split}"
            )
        width = max(len("label"), *(len(label) for label in self.labels))
        header = f"  {'label':<{width}}  " + "  ".join(f"{name:>10}" for name in SPLITS)
        lines += ["", header, "  " + "-" * (len(header) - 2)]
        counts = {split: self.label_counts(split) for split in SPLITS}
        for label in self.labels:
            cells = "  ".join(f"{counts[split][label]:>10}" for split in SPLITS)
            lines.append(f"  {label:<{width}}  {cells}")
        totals = "  ".join(f"{len(self.splits[split]):>10}" for split in SPLITS)
        lines.append(f"  {'(messages)':<{width}}  {totals}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- reading


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _decode_utf8(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        bad = raw[error.start : error.start + 4]
        raise DataError(
            f"{path}: not valid UTF-8 at byte offset {error.start} (line {line}, "
            f"bytes {bad!r}); re-save the file as UTF-8"
        ) from None


def read_records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """Return ``(row_number, record)`` pairs from a JSONL, CSV/TSV or Parquet file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if not path.is_file():
        raise DataError(f"data path is not a file: {path}")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        records = _read_parquet(path)
    elif suffix in JSONL_SUFFIXES or suffix in CSV_SUFFIXES:
        raw = path.read_bytes()
        text = _decode_utf8(path, raw)
        records = _read_jsonl(path, text) if suffix in JSONL_SUFFIXES else _read_csv(path, text)
    else:
        raise DataError(
            f"{path}: unsupported file type {suffix!r}; use .jsonl/.ndjson, .csv/.tsv or .parquet"
        )
    if not records:
        raise DataError(f"{path}: the file is empty (no data rows)")
    return records


def _read_jsonl(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(
                f"{path}: line {number} is not valid JSON ({error.msg} at column {error.colno})"
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"{path}: line {number} is a JSON {type(record).__name__}, expected an object"
            )
        records.append((number, record))
    return records


def _read_csv(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = []
    try:
        for record in reader:
            # line_num is the physical line the row ended on (quoted newlines included).
            extra = record.pop(None, None)
            if extra:
                raise DataError(
                    f"{path}: line {reader.line_num} has {len(extra)} more field(s) than the header"
                )
            records.append((reader.line_num, record))
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num}: {error}") from None
    return records


def _read_parquet(path: Path) -> list[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{path}: cannot read Parquet: {error}") from None
    return [(index + 1, record) for index, record in enumerate(table.to_pylist())]


def _columns(records: Iterable[tuple[int, dict[str, Any]]]) -> list[str]:
    seen: dict[str, None] = {}
    for _, record in records:
        for key in record:
            seen.setdefault(key, None)
    return list(seen)


# --------------------------------------------------------------------------- cleaning


def normalize_label(value: str) -> str:
    """``" Bug Report "`` -> ``"bug_report"``: strip, lowercase, spaces/hyphens -> ``_``."""
    return _LABEL_SEPARATORS.sub("_", str(value).strip().lower()).strip("_")


def _parse_labels(value: Any, multi_label: bool, delimiter: str) -> tuple[str, ...] | None:
    """Labels of one cell, normalised; ``None`` when the cell is missing or blank."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if multi_label and text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = text
        else:
            value = text.split(delimiter) if multi_label and delimiter else [text]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        value = [value]
    labels = [normalize_label(item) for item in value if item is not None and str(item).strip()]
    # Keep order, drop repeats ("question,question").
    return tuple(dict.fromkeys(labels))


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN from CSV/Parquet
        return ""
    return str(value).strip()


def load_dataset(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    split_column: str | None = "split",
    labels: Sequence[str] | None = None,
    multi_label: bool = False,
    label_delimiter: str = ",",
    strict: bool = False,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.15,
    seed: int = 13,
    max_rows: int = 0,
    select: str | None = None,
) -> Dataset:
    """Read, clean and split ``path``.

    ``labels`` is the allowed set in id order (empty/None: every label seen, sorted).
    ``select`` is for evaluation: ``"all"`` puts every row in ``splits["test"]``; a split
    name keeps just the rows whose split column says so, again all in ``splits["test"]``.
    """
    path = Path(path)
    records = read_records(path)
    columns = _columns(records)
    missing = [c for c in (text_column, label_column) if c not in columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"columns found: {', '.join(repr(c) for c in columns) or '(none)'}"
        )
    has_split = bool(split_column) and split_column in columns
    only_split = None if select in (None, "all") else _SPLIT_ALIASES.get(select, select)
    if only_split is not None and not has_split:
        raise DataError(
            f"{path}: asked for split {select!r} but the file has no {split_column!r} "
            f"column; columns found: {', '.join(repr(c) for c in columns)}"
        )

    stats = LoadStats(rows=len(records))
    allowed = tuple(normalize_label(label) for label in labels) if labels else None
    unknown_rows: dict[str, list[int]] = defaultdict(list)
    cleaned: list[tuple[Example, str | None]] = []
    seen: dict[str, tuple[str, ...]] = {}

    for row, record in records:
        split = None
        if has_split:
            split = _split_of(path, row, record.get(split_column))
            if split is None:
                stats.rows_without_split += 1
        if only_split is not None and split != only_split:
            stats.rows -= 1  # not part of what was asked for
            continue
        text = _text_of(record.get(text_column))
        if not text:
            stats.empty_text += 1
            continue
        row_labels = _parse_labels(record.get(label_column), multi_label, label_delimiter)
        if row_labels is None or (not row_labels and not multi_label):
            stats.missing_label += 1
            continue
        if not multi_label and len(row_labels) > 1:
            if strict:
                raise DataError(
                    f"{path}: row {row} has several labels {list(row_labels)} but the task "
                    "is single-label (set multi_label)"
                )
            stats.multiple_labels += 1
            continue
        if allowed is not None:
            bad = [label for label in row_labels if label not in allowed]
            if bad:
                for label in bad:
                    unknown_rows[label].append(row)
                stats.unknown_labels[bad[0]] += 1
                continue
        key = normalize(text)
        if not key:
            stats.empty_text += 1
            continue
        if key in seen:
            stats.duplicates += 1
            if set(seen[key]) != set(row_labels):
                stats.conflicting_duplicates += 1
            continue
        seen[key] = row_labels
        cleaned.append((Example(text=text, labels=row_labels, row=row), split))

    if strict and unknown_rows:
        detail = "; ".join(
            f"{label!r} (rows {', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''})"
            for label, rows in sorted(unknown_rows.items())
        )
        raise DataError(f"{path}: unknown label(s) {detail}; allowed: {', '.join(allowed or ())}")
    if not cleaned:
        raise DataError(
            f"{path}: no usable rows after cleaning ({stats.rows} read: {stats.empty_text} "
            f"empty, {stats.missing_label} without label, "
            f"{sum(stats.unknown_labels.values())} with unknown labels)"
        )
    if max_rows:
        cleaned = cleaned[:max_rows]

    label_set = allowed or tuple(sorted({label for ex, _ in cleaned for label in ex.labels}))
    if select is not None:
        splits = {"train": [], "validation": [], "test": [ex for ex, _ in cleaned]}
        stats.split_source = (
            "all rows (evaluation)"
            if only_split is None
            else f"only rows with {split_column}={only_split!r} (evaluation)"
        )
    elif has_split and any(split == "test" for _, split in cleaned):
        splits = _fixed_splits(cleaned, validation_fraction, seed, stats, split_column)
    else:
        splits = _random_splits(cleaned, validation_fraction, test_fraction, seed, stats)
    return Dataset(
        path=path,
        sha256=file_sha256(path),
        labels=label_set,
        multi_label=multi_label,
        splits=splits,
        stats=stats,
    )


def _split_of(path: Path, row: int, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    name = _SPLIT_ALIASES.get(str(value).strip().lower())
    if name is None:
        raise DataError(
            f"{path}: row {row} has split {value!r}; expected one of train, validation, test"
        )
    return name


# --------------------------------------------------------------------------- splitting


def _strata_key(example: Example, frequency: Counter[str]) -> str:
    """Single-label: the label. Multi-label: the example's rarest label (or "none")."""
    if not example.labels:
        return "<none>"
    return min(example.labels, key=lambda label: (frequency[label], label))


def stratified_split(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split off ``fraction`` of every label group (deterministic for a seed).

    Groups of three or more always give at least one example and keep at least one, so
    every label that can be scored on the held-out side is.
    """
    frequency = Counter(label for ex in examples for label in ex.labels)
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[_strata_key(example, frequency)].append(example)
    rng = random.Random(seed)
    kept: list[Example] = []
    held: list[Example] = []
    for key in sorted(groups):
        group = groups[key][:]
        rng.shuffle(group)
        take = round(len(group) * fraction)
        if len(group) >= 3:
            take = max(take, 1)
        take = min(take, len(group) - 1) if len(group) > 1 else 0
        held.extend(group[:take])
        kept.extend(group[take:])
    order = {id(ex): i for i, ex in enumerate(examples)}
    kept.sort(key=lambda ex: order[id(ex)])
    held.sort(key=lambda ex: order[id(ex)])
    return kept, held


def _fixed_splits(
    cleaned: list[tuple[Example, str | None]],
    validation_fraction: float,
    seed: int,
    stats: LoadStats,
    split_column: str | None,
) -> dict[str, list[Example]]:
    test = [ex for ex, split in cleaned if split == "test"]
    fixed_validation = [ex for ex, split in cleaned if split == "validation"]
    pool = [ex for ex, split in cleaned if split in ("train", None)]
    if fixed_validation:
        train, validation = pool, fixed_validation
        stats.split_source = f"fixed train/validation/test from column {split_column!r}"
    else:
        train, validation = stratified_split(pool, validation_fraction, seed)
        stats.split_source = (
            f"fixed test from column {split_column!r}; validation = stratified "
            f"{validation_fraction:.0%} of train (seed {seed})"
        )
    return {"train": train, "validation": validation, "test": test}


def _random_splits(
    cleaned: list[tuple[Example, str | None]],
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    stats: LoadStats,
) -> dict[str, list[Example]]:
    examples = [ex for ex, _ in cleaned]
    rest, test = stratified_split(examples, test_fraction, seed)
    train, validation = stratified_split(rest, validation_fraction, seed + 1)
    stats.split_source = (
        f"stratified random (seed {seed}): test {test_fraction:.0%}, "
        f"validation {validation_fraction:.0%} of the rest"
    )
    return {"train": train, "validation": validation, "test": test}


def load_from_arguments(args: Any, labels: Sequence[str] | None = None) -> Dataset:
    """``load_dataset`` with the fields of a ``TrainingArguments``."""
    return load_dataset(
        args.data,
        text_column=args.text_column,
        label_column=args.label_column,
        split_column=args.split_column or None,
        labels=labels if labels is not None else args.labels,
        multi_label=args.multi_label,
        label_delimiter=args.label_delimiter,
        strict=args.strict_labels,
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed if args.split_seed is None else args.split_seed,
        max_rows=args.max_rows,
    )
