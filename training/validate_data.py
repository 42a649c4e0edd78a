"""Merge the hand-written dataset parts and validate `training/data/messages.jsonl`.

    python -m training.validate_data --merge        # parts/*.jsonl -> messages.jsonl, then validate
    python -m training.validate_data [--data PATH] [--json PROFILE.json]

Why it exists: the dataset is written by several people at once, so duplicates, near-copies,
templated wording and train/test leakage creep in. Every check here is cheap (stdlib + numpy,
a few seconds for ~5k messages) so it runs in the test suite on every commit.

Exit status 0 prints the profile; 1 prints the profile (when the file parses) and the problems.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import re
import string
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LABELS: tuple[str, ...] = (
    "question", "answer", "comment", "bug_report", "suggestion", "spam", "toxic",
)
SPLITS: tuple[str, ...] = ("train", "test")
FIELDS: tuple[str, ...] = ("id", "text", "label", "split", "server", "lang", "hard_case")
PART_FIELDS: tuple[str, ...] = ("text", "label", "server", "lang", "hard_case")
# The tags defined in training/data/LABELLING_GUIDE.md ("Hard-case tags").
HARD_CASE_TAGS: frozenset[str] = frozenset({
    "question_no_qmark", "answer_as_question", "bug_as_question", "suggestion_as_question",
    "friendly_trash_talk", "real_hostility_casual", "spam_as_help", "spam_as_question",
    "sarcasm", "mixed_intent", "swearing_not_toxic", "question_about_existing",
    "own_code_question",
})

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_DATA = DATA_DIR / "messages.jsonl"
DEFAULT_PARTS = DATA_DIR / "parts"

SPLIT_SEED = 20261122
TEST_FRACTION = 0.15
# Jaccard similarity of character 4-gram sets at or above which two messages are
# near-duplicates (a check failure). Messages shorter than NEAR_DUP_MIN_CHARS
# (normalised) are compared by exact normalised match only: short chat ("gg", "ty!!")
# shares most of its 4-grams by nature.
SHINGLE_SIZE = 4
NEAR_DUP_THRESHOLD = 0.8
NEAR_DUP_MIN_CHARS = 25
# Looser similarity used only when splitting: messages this similar are kept in the same
# split, so paraphrase-level overlap cannot leak from train into test either.
SPLIT_GROUP_THRESHOLD = 0.6
MIN_TOTAL = 4200
MIN_PER_LABEL = 600
TEMPLATE_MAX_SHARE = 0.08
TEMPLATE_MIN_REPEATS = 2  # a single occurrence is never a template, however small the label
TEST_SHARE_RANGE = (0.10, 0.20)  # checked for labels with at least 100 messages

# MinHash / LSH: 42 bands x 3 rows. A pair at Jaccard 0.6 becomes a candidate with
# probability 1 - (1 - 0.6**3)**42 > 0.9999; candidates are then verified exactly.
_BANDS, _ROWS = 42, 3
_NUM_PERM = _BANDS * _ROWS

_MENTION_RE = re.compile(r"<@[!&]?\d+>")
_CHANNEL_RE = re.compile(r"<#\d+>")
_CUSTOM_EMOJI_RE = re.compile(r"<a?:(\w+):\d+>")
_LONG_DIGITS_RE = re.compile(r"\d{15,}")
_URL_RE = re.compile(r"https?://\S+|\bwww\.\S+|\bdiscord\.gg/\S+", re.IGNORECASE)
_CODE_BLOCK_RE = re.compile(r"```.*?```", re.DOTALL)
_INLINE_CODE_RE = re.compile(r"`[^`\n]+`")
_EMOJI_RE = re.compile(
    "[\U0001F1E6-\U0001F1FF\U0001F300-\U0001F5FF\U0001F600-\U0001F64F\U0001F680-\U0001F6FF"
    "\U0001F900-\U0001F9FF\U0001FA70-\U0001FAFF\u2600-\u27BF\u2B50\u2B55\u203C\u2049]"
)
_LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_ID_RE = re.compile(r"^[0-9a-f]{12}$")
_WS_RE = re.compile(r"\s+")
_STRIP_CHARS = string.punctuation + "…“”‘’¿¡«»"


# ---------------------------------------------------------------- normalisation


@functools.lru_cache(maxsize=1 << 16)
def normalize_for_dedup(text: str) -> str:
    """NFKC, casefold, ids and mention digits removed, whitespace collapsed.

    Two messages that differ only by who they ping or which emoji id they use are the
    same message for training purposes.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _MENTION_RE.sub("<@>", text)
    text = _CHANNEL_RE.sub("<#>", text)
    text = _CUSTOM_EMOJI_RE.sub(r"<:\1:>", text)
    text = _LONG_DIGITS_RE.sub("", text)
    return _WS_RE.sub(" ", text).strip()


def message_id(text: str) -> str:
    """Stable id: the first 12 hex digits of sha1(normalised text)."""
    return hashlib.sha1(normalize_for_dedup(text).encode("utf-8")).hexdigest()[:12]


def opening(text: str, words: int = 3) -> str | None:
    """The first `words` words (normalised, punctuation trimmed), or None if shorter."""
    tokens = [t.strip(_STRIP_CHARS) for t in normalize_for_dedup(text).split()]
    tokens = [t for t in tokens if t]
    return " ".join(tokens[:words]) if len(tokens) >= words else None


# ---------------------------------------------------------------- near-duplicates


_GRAM_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
    dtype=np.uint64,
)


def _shingle_ids(norms: Sequence[str]) -> tuple[list[np.ndarray], int]:
    """Each text's distinct character 4-grams as dense integer ids, and the vocabulary size.

    A 4-gram's code points are mixed into one 64-bit code (collisions ~2**-64 per pair),
    then `np.unique` over the whole corpus maps codes to ids 0..V-1.
    """
    codes = []
    for norm in norms:
        cps = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        n = max(len(cps) - SHINGLE_SIZE + 1, 1)
        gram = np.zeros(n, dtype=np.uint64)
        for k in range(min(SHINGLE_SIZE, len(cps))):
            gram += cps[k:k + n] * _GRAM_MIX[k]
        codes.append(gram)
    vocab, inverse = np.unique(np.concatenate(codes), return_inverse=True)
    bounds = np.cumsum([len(c) for c in codes])[:-1]
    return [np.unique(ids) for ids in np.split(inverse, bounds)], len(vocab)


def _minhash_signatures(shingles: list[np.ndarray], vocab_size: int) -> np.ndarray:
    """[len(shingles), _NUM_PERM] MinHash signatures with seeded universal hashes."""
    # Multiply-shift hashing, ((a*x + b) mod 2**64) >> 32 with odd a: a universal family
    # without the (slow) modulo; one hash per permutation per distinct shingle.
    rng = np.random.default_rng(SPLIT_SEED)
    a = rng.integers(0, 2**63, size=(_NUM_PERM, 1), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=(_NUM_PERM, 1), dtype=np.uint64)
    a, b = a.T, b.T
    ids = np.arange(vocab_size, dtype=np.uint64)[:, None]
    hashed = np.empty((vocab_size, _NUM_PERM), dtype=np.uint32)  # row per shingle: fast gathers
    for lo in range(0, vocab_size, 8192):
        hashed[lo:lo + 8192] = (ids[lo:lo + 8192] * a + b) >> np.uint64(32)
    signatures = np.empty((len(shingles), _NUM_PERM), dtype=np.uint64)
    for lo in range(0, len(shingles), 256):  # chunks keep the gathered matrix small
        chunk = shingles[lo:lo + 256]
        offsets = np.r_[0, np.cumsum([len(c) for c in chunk])[:-1]]
        signatures[lo:lo + len(chunk)] = np.minimum.reduceat(hashed[np.concatenate(chunk)], offsets, axis=0)
    return signatures


def near_duplicate_pairs(
    texts: Sequence[str],
    threshold: float = NEAR_DUP_THRESHOLD,
    min_chars: int = NEAR_DUP_MIN_CHARS,
) -> list[tuple[int, int, float]]:
    """Index pairs (i < j) whose normalised texts have 4-gram Jaccard >= threshold.

    MinHash signatures bucketed by LSH bands find candidates in near-linear time; each
    candidate is then verified with the exact Jaccard, so there are no false positives.
    Texts shorter than `min_chars` after normalisation are skipped (exact match covers them).
    """
    norms = [normalize_for_dedup(t) for t in texts]
    eligible = [i for i, n in enumerate(norms) if len(n) >= min_chars]
    if len(eligible) < 2:
        return []
    shingles, vocab_size = _shingle_ids([norms[i] for i in eligible])
    signatures = _minhash_signatures(shingles, vocab_size)
    candidates: set[tuple[int, int]] = set()
    for band in range(_BANDS):
        keys = (signatures[:, band * _ROWS:(band + 1) * _ROWS] * _GRAM_MIX[:_ROWS]).sum(axis=1)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(keys)]
        for lo, hi in zip(starts[ends - starts > 1], ends[ends - starts > 1], strict=True):
            members = sorted(order[lo:hi].tolist())
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    candidates.add((members[x], members[y]))
    pairs = []
    for x, y in sorted(candidates):
        inter = len(np.intersect1d(shingles[x], shingles[y], assume_unique=True))
        jaccard = inter / (len(shingles[x]) + len(shingles[y]) - inter)
        if jaccard >= threshold:
            pairs.append((eligible[x], eligible[y], round(jaccard, 3)))
    return pairs


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            self.parent[max(rx, ry)] = min(rx, ry)


# ---------------------------------------------------------------- reading


@dataclass
class Loaded:
    records: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_jsonl(path: Path) -> Loaded:
    """Parse a JSONL file; unparsable or non-object lines become problems, not crashes."""
    out = Loaded()
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                out.problems.append(f"{path.name}:{lineno}: invalid JSON ({exc.msg})")
                continue
            if not isinstance(obj, dict):
                out.problems.append(f"{path.name}:{lineno}: not a JSON object")
                continue
            obj["_where"] = f"{path.name}:{lineno}"
            out.records.append(obj)
    return out


def _schema_problems(rec: dict, fields: Sequence[str]) -> list[str]:
    where = rec.get("_where", "?")
    keys = set(rec) - {"_where"}
    problems = []
    if missing := [f for f in fields if f not in keys]:
        problems.append(f"{where}: missing field(s) {missing}")
    if extra := sorted(keys - set(fields)):
        problems.append(f"{where}: unexpected field(s) {extra}")
    text = rec.get("text")
    if "text" in keys and (not isinstance(text, str) or not text.strip()):
        problems.append(f"{where}: text must be a non-empty string")
    if "label" in keys and rec["label"] not in LABELS:
        problems.append(f"{where}: unknown label {rec['label']!r}")
    if "split" in fields and "split" in keys and rec["split"] not in SPLITS:
        problems.append(f"{where}: split must be one of {SPLITS}, got {rec['split']!r}")
    if "server" in keys and (not isinstance(rec["server"], str) or not rec["server"].strip()):
        problems.append(f"{where}: server must be a non-empty string")
    if "lang" in keys and (not isinstance(rec["lang"], str) or not _LANG_RE.match(rec["lang"])):
        problems.append(f"{where}: lang must be a language code like 'en', got {rec['lang']!r}")
    if "hard_case" in keys and rec["hard_case"] is not None and rec["hard_case"] not in HARD_CASE_TAGS:
        problems.append(f"{where}: hard_case {rec['hard_case']!r} is not a guide tag (or null)")
    if "id" in fields and "id" in keys:
        if not isinstance(rec["id"], str) or not _ID_RE.match(rec["id"]):
            problems.append(f"{where}: id must be 12 lowercase hex digits, got {rec['id']!r}")
        elif isinstance(text, str) and rec["id"] != message_id(text):
            problems.append(f"{where}: id {rec['id']} does not match its text (re-run --merge)")
    return problems


# ---------------------------------------------------------------- merge


def assign_splits(
    records: list[dict],
    seed: int = SPLIT_SEED,
    previous: dict[str, str] | None = None,
    freeze_test: bool = False,
) -> None:
    """Give every record a `split`, in place: ~15% test per label, near-dup groups kept together.

    Groups come from union-find over pairs at SPLIT_GROUP_THRESHOLD. Each group is owned by
    the label of its smallest id; per label, groups sorted by that id are shuffled with a
    label-specific seed and taken into test while they fit under the label's target.

    `previous` (id -> split of the last merged file) keeps the fixed test split fixed when
    messages are added: a group with any already-split member keeps that split ("test" wins,
    so nothing that was tested on can leak into train); only all-new groups are drawn.

    `freeze_test` draws no new test messages at all: all-new groups go to train, so scores
    stay comparable across dataset versions. A new message that is a near-copy of a test
    message still joins it in test (leakage beats comparability).
    """
    previous = previous or {}
    uf = _UnionFind(len(records))
    for i, j, _ in near_duplicate_pairs([r["text"] for r in records], SPLIT_GROUP_THRESHOLD):
        uf.union(i, j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(records)):
        groups[uf.find(i)].append(i)
    by_label: dict[str, list[tuple[str, list[int]]]] = defaultdict(list)
    for members in groups.values():
        owner = min(members, key=lambda k: records[k]["id"])
        by_label[records[owner]["label"]].append((records[owner]["id"], members))
    label_totals = Counter(r["label"] for r in records)
    test_counts: Counter[str] = Counter()
    for label in list(by_label):
        fresh = []
        for owner_id, members in by_label[label]:
            known = {previous[records[k]["id"]] for k in members if records[k]["id"] in previous}
            if not known:
                fresh.append((owner_id, members))
                continue
            split = "test" if "test" in known else "train"
            for k in members:
                records[k]["split"] = split
            if split == "test":
                test_counts.update(records[k]["label"] for k in members)
        by_label[label] = fresh
    if freeze_test and previous:
        for fresh in by_label.values():
            for _, members in fresh:
                for k in members:
                    records[k]["split"] = "train"
        return
    for label in sorted(by_label):
        total = label_totals[label]
        target = max(1, round(TEST_FRACTION * total)) if total >= 2 else 0
        ordered = sorted(by_label[label])
        random.Random(f"{seed}:{label}").shuffle(ordered)
        for _, members in ordered:
            own = sum(1 for k in members if records[k]["label"] == label)
            to_test = test_counts[label] + own <= target
            for k in members:
                records[k]["split"] = "test" if to_test else "train"
            if to_test:
                test_counts.update(records[k]["label"] for k in members)


def merge_parts(
    parts_dir: Path, out_path: Path, freeze_test: bool = False
) -> tuple[list[dict], list[str], list[str]]:
    """Read parts/*.jsonl, drop exact duplicates (first kept), assign ids and splits, write.

    With `freeze_test`, messages new to `out_path` go to train (see `assign_splits`).

    Returns (records, problems, notes). Nothing is written when there are problems: a
    malformed line is a writer's bug to fix, not something to drop silently.
    """
    paths = sorted(parts_dir.glob("*.jsonl"))
    problems: list[str] = []
    notes: list[str] = []
    if not paths:
        return [], [f"no *.jsonl files in {parts_dir}"], notes
    kept: dict[str, dict] = {}
    dropped_same_label = 0
    for path in paths:
        loaded = read_jsonl(path)
        problems += loaded.problems
        for rec in loaded.records:
            if errs := _schema_problems(rec, PART_FIELDS):
                problems += errs
                continue
            if rec["label"] != path.stem.split("-")[0]:
                notes.append(f"{rec['_where']}: label {rec['label']!r} in part {path.name}")
            mid = message_id(rec["text"])
            if mid in kept:
                first = kept[mid]
                if first["label"] != rec["label"]:
                    notes.append(
                        f"cross-label exact duplicate dropped: {rec['_where']} ({rec['label']}) "
                        f"== {first['_where']} ({first['label']}): {rec['text'][:60]!r}"
                    )
                else:
                    dropped_same_label += 1
                continue
            kept[mid] = {
                "id": mid, "text": rec["text"], "label": rec["label"], "split": None,
                "server": rec["server"], "lang": rec["lang"], "hard_case": rec["hard_case"],
                "_where": rec["_where"],
            }
    if dropped_same_label:
        notes.append(f"dropped {dropped_same_label} exact duplicate(s) within the same label")
    if problems:
        return [], problems, notes
    records = sorted(kept.values(), key=lambda r: r["id"])
    previous: dict[str, str] = {}
    if out_path.is_file():  # keep the fixed split of messages already merged
        for rec in read_jsonl(out_path).records:
            if isinstance(rec.get("id"), str) and rec.get("split") in SPLITS:
                previous[rec["id"]] = rec["split"]
    assign_splits(records, previous=previous, freeze_test=freeze_test)
    if freeze_test and previous:
        joined = sum(1 for r in records if r["id"] not in previous and r["split"] == "test")
        notes.append(f"test split frozen: {joined} new message(s) joined test as near-copies of test messages")
    records.sort(key=lambda r: (r["label"], r["id"]))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps({k: rec[k] for k in FIELDS}, ensure_ascii=False) + "\n")
    return records, problems, notes


# ---------------------------------------------------------------- checks


@dataclass(frozen=True)
class Limits:
    """Thresholds of the checks; tests shrink the counts to exercise one check at a time."""

    min_total: int = MIN_TOTAL
    min_per_label: int = MIN_PER_LABEL
    near_dup_threshold: float = NEAR_DUP_THRESHOLD
    template_max_share: float = TEMPLATE_MAX_SHARE
    max_examples: int = 15


def _cap(items: list[str], limit: int, what: str) -> list[str]:
    if len(items) <= limit:
        return items
    return [*items[:limit], f"... and {len(items) - limit} more {what}"]


def check_records(records: list[dict], limits: Limits = Limits()) -> list[str]:
    """Every dataset check; returns human-readable problems (empty list = valid)."""
    problems: list[str] = []
    for n, rec in enumerate(records, 1):
        problems += _schema_problems({"_where": f"record {n}", **rec}, FIELDS)
    if problems:  # later checks assume the schema holds
        return _cap(problems, limits.max_examples * 3, "schema problems")
    ids = Counter(r["id"] for r in records)
    if dup_ids := [i for i, n in ids.items() if n > 1]:
        problems.append(f"duplicate ids: {dup_ids[:10]}")

    counts = Counter(r["label"] for r in records)
    if set(counts) != set(LABELS):
        problems.append(f"label set must be exactly {list(LABELS)}; missing {sorted(set(LABELS) - set(counts))}")
    if len(records) < limits.min_total:
        problems.append(f"only {len(records)} messages, need at least {limits.min_total}")
    for label in LABELS:
        if 0 < counts[label] < limits.min_per_label:
            problems.append(f"label {label!r}: {counts[label]} messages, need at least {limits.min_per_label}")
        tests = sum(1 for r in records if r["label"] == label and r["split"] == "test")
        if counts[label] and not tests:
            problems.append(f"label {label!r} has no test messages")
        lo, hi = TEST_SHARE_RANGE
        if counts[label] >= 100 and not lo <= tests / counts[label] <= hi:
            problems.append(f"label {label!r}: test share {tests / counts[label]:.1%} outside {lo:.0%}-{hi:.0%}")

    def describe(i: int) -> str:
        r = records[i]
        return f"{r['id']} [{r['label']}/{r['split']}] {r['text'][:70]!r}"

    by_norm: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_norm[normalize_for_dedup(r["text"])].append(i)
    exact = [idx for idx in by_norm.values() if len(idx) > 1]
    problems += _cap(
        [f"exact duplicate (normalised): {' == '.join(describe(i) for i in idx)}" for idx in exact],
        limits.max_examples, "exact duplicates",
    )
    near = near_duplicate_pairs([r["text"] for r in records], limits.near_dup_threshold)
    problems += _cap(
        [f"near-duplicate (Jaccard {jac}): {describe(i)} ~ {describe(j)}" for i, j, jac in near],
        limits.max_examples, "near-duplicate pairs",
    )
    leaks = [
        f"split leakage (exact): {describe(idx[0])} ~ {describe(k)}"
        for idx in exact for k in idx[1:] if records[k]["split"] != records[idx[0]]["split"]
    ] + [
        f"split leakage (Jaccard {jac}): {describe(i)} ~ {describe(j)}"
        for i, j, jac in near if records[i]["split"] != records[j]["split"]
    ]
    problems += _cap(leaks, limits.max_examples, "leaking pairs")

    for label, top in template_openings(records).items():
        for phrase, n in top:
            share = n / counts[label]
            if n >= TEMPLATE_MIN_REPEATS and share > limits.template_max_share:
                problems.append(
                    f"template smell: {share:.1%} of {label!r} messages open with {phrase!r} "
                    f"(limit {limits.template_max_share:.0%})"
                )
    return problems


def template_openings(records: Iterable[dict], top: int = 5) -> dict[str, list[tuple[str, int]]]:
    """The most common leading 3-word openings per label."""
    per_label: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        if (op := opening(r["text"])) is not None:
            per_label[r["label"]][op] += 1
    return {label: c.most_common(top) for label, c in sorted(per_label.items())}


# ---------------------------------------------------------------- profile

FEATURES: dict[str, re.Pattern[str]] = {
    "mention": _MENTION_RE,
    "channel": _CHANNEL_RE,
    "custom_emoji": _CUSTOM_EMOJI_RE,
    "emoji": _EMOJI_RE,
    "url": _URL_RE,
    "code_block": _CODE_BLOCK_RE,
    "multiline": re.compile(r"\n"),
}


def _has_inline_code(text: str) -> bool:
    return bool(_INLINE_CODE_RE.search(_CODE_BLOCK_RE.sub("", text)))


def _quantiles(values: list[int]) -> dict[str, int]:
    if not values:
        return {}
    qs = np.percentile(np.asarray(values), [10, 50, 90, 99])
    return {f"p{p}": round(float(v)) for p, v in zip((10, 50, 90, 99), qs, strict=True)}


def build_profile(records: list[dict]) -> dict:
    """Composition numbers for the datasheet and for spotting skew between labels."""
    labels = [lab for lab in LABELS if any(r["label"] == lab for r in records)]
    labels += sorted({r["label"] for r in records} - set(labels))
    groups = {"all": records, **{lab: [r for r in records if r["label"] == lab] for lab in labels}}
    profile: dict = {"total": len(records), "splits": {}, "length_chars": {}, "length_tokens": {},
                     "char_buckets": {}, "features": {}, "langs": {}, "hard_case": {},
                     "servers": {}, "openings": template_openings(records)}
    buckets = ((0, 60), (60, 200), (200, 600), (600, 10**9))
    for name, rs in groups.items():
        n = max(len(rs), 1)
        lengths = [len(r["text"]) for r in rs]
        profile["splits"][name] = {s: sum(1 for r in rs if r.get("split") == s) for s in SPLITS}
        profile["length_chars"][name] = _quantiles(lengths)
        profile["length_tokens"][name] = _quantiles([len(r["text"].split()) for r in rs])
        profile["char_buckets"][name] = {
            f"{lo}-{hi if hi < 10**9 else ''}": round(sum(lo <= x < hi for x in lengths) / n, 3)
            for lo, hi in buckets
        }
        feats = {k: round(sum(bool(p.search(r["text"])) for r in rs) / n, 3) for k, p in FEATURES.items()}
        feats["inline_code"] = round(sum(_has_inline_code(r["text"]) for r in rs) / n, 3)
        profile["features"][name] = feats
        profile["langs"][name] = dict(Counter(r["lang"] for r in rs).most_common())
        tags = Counter(r["hard_case"] for r in rs if r.get("hard_case"))
        profile["hard_case"][name] = {"share": round(sum(tags.values()) / n, 3), "tags": dict(tags.most_common())}
        profile["servers"][name] = dict(Counter(r["server"] for r in rs).most_common())
    return profile


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    return "\n".join(lines + [fmt.format(*r) for r in rows])


def format_profile(profile: dict) -> str:
    """The profile as plain-text tables (what the datasheet's composition section shows)."""
    names = list(profile["splits"])
    out = [f"messages: {profile['total']}", ""]
    out.append(_table(["label", "train", "test", "total", "test%"], (
        [n, s["train"], s["test"], s["train"] + s["test"], f"{s['test'] / max(s['train'] + s['test'], 1):.1%}"]
        for n, s in profile["splits"].items())))
    for key, title in (("length_chars", "chars"), ("length_tokens", "tokens")):
        out += ["", _table([f"length ({title})", "p10", "p50", "p90", "p99"], (
            [n, *(q.get(p, "") for p in ("p10", "p50", "p90", "p99"))] for n, q in profile[key].items()))]
    bucket_names = list(next(iter(profile["char_buckets"].values()), {}))
    out += ["", _table(["chars share", *bucket_names], (
        [n, *(f"{b[k]:.0%}" for k in bucket_names)] for n, b in profile["char_buckets"].items()))]
    feat_names = [*FEATURES, "inline_code"]
    out += ["", _table(["has (share)", *feat_names], (
        [n, *(f"{f[k]:.1%}" for k in feat_names)] for n, f in profile["features"].items()))]
    out += ["", _table(["label", "hard_case%", "non-en%", "langs"], (
        [n, f"{profile['hard_case'][n]['share']:.1%}",
         f"{1 - profile['langs'][n].get('en', 0) / max(sum(profile['langs'][n].values()), 1):.1%}",
         " ".join(f"{k}:{v}" for k, v in profile["langs"][n].items())]
        for n in names))]
    out += ["", "hard-case tags per label:"]
    out += [f"  {n}: " + ", ".join(f"{k} {v}" for k, v in profile["hard_case"][n]["tags"].items())
            for n in names if n != "all"]
    servers = list(profile["servers"]["all"]) if "all" in profile["servers"] else []
    out += ["", _table(["server", *names], (
        [s, *(profile["servers"][n].get(s, 0) for n in names)] for s in servers))]
    out += ["", "most common 3-word openings per label (template smell):"]
    for label, top in profile["openings"].items():
        total = sum(profile["splits"][label].values())
        out.append(f"  {label}: " + "; ".join(f"{p!r} {c / total:.1%}" for p, c in top[:3]))
    return "\n".join(out)


# ---------------------------------------------------------------- CLI


def _profilable(rec: dict) -> bool:
    """Whether a record has the fields the profile reads, with usable types."""
    return all(isinstance(rec.get(k), str) for k in ("text", "label", "server", "lang"))


def validate_file(path: Path, limits: Limits = Limits()) -> tuple[list[dict], list[str]]:
    """Read and check a merged dataset file; returns (records, problems)."""
    if not path.exists():
        return [], [f"{path} does not exist (run with --merge first)"]
    loaded = read_jsonl(path)
    if not loaded.records and not loaded.problems:
        return [], [f"{path} is empty"]
    return loaded.records, loaded.problems + check_records(loaded.records, limits)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.validate_data", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="merged dataset (JSONL)")
    parser.add_argument("--parts", type=Path, default=DEFAULT_PARTS, help="part files for --merge")
    parser.add_argument("--merge", action="store_true", help="rebuild --data from --parts first")
    parser.add_argument(
        "--freeze-test", action="store_true",
        help="with --merge: put every new message in train (the test split stays as it is)",
    )
    parser.add_argument("--json", type=Path, help="also write the profile as JSON here")
    args = parser.parse_args(argv)

    if args.merge:
        _, problems, notes = merge_parts(args.parts, args.data, freeze_test=args.freeze_test)
        for note in notes:
            print(f"note: {note}")
        if problems:
            print(f"\nmerge failed, {args.data} not written; {len(problems)} problem(s):")
            print("\n".join(f"  - {p}" for p in problems))
            return 1
        print(f"wrote {args.data}\n")

    records, problems = validate_file(args.data)
    if records and all(_profilable(r) for r in records):
        profile = build_profile(records)
        print(format_profile(profile))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({**profile, "problems": problems}, indent=2, ensure_ascii=False) + "\n")
    if problems:
        print(f"\nINVALID: {len(problems)} problem(s) in {args.data}:")
        print("\n".join(f"  - {p}" for p in problems))
        return 1
    print(f"\nOK: {args.data} passes every check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
