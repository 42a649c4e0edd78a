"""The dataset validator: the real merged file passes, and each check catches what it should."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from training import validate_data as vd

SMALL = vd.Limits(min_total=0, min_per_label=0)
_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vi", "zo", "pe", "su", "go", "ha"]


def _words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choice(_SYLLABLES) for _ in range(3)) for _ in range(n))


def _records(per_label: int = 12, seed: int = 1) -> list[dict]:
    """Distinct random-word messages for every label, every 6th one in test."""
    rng = random.Random(seed)
    out = []
    for label in vd.LABELS:
        for k in range(per_label):
            text = _words(rng, 8)
            out.append(
                {
                    "id": vd.message_id(text),
                    "text": text,
                    "label": label,
                    "split": "test" if k % 6 == 0 else "train",
                    "server": "gaming",
                    "lang": "en",
                    "hard_case": None,
                }
            )
    return out


def _retext(rec: dict, text: str) -> None:
    rec["text"] = text
    rec["id"] = vd.message_id(text)


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def _matching(problems: list[str], needle: str) -> list[str]:
    return [p for p in problems if needle in p]


# ---------------------------------------------------------------- the real dataset


def test_real_dataset_passes_every_check():
    if not vd.DEFAULT_DATA.exists():
        pytest.skip(f"{vd.DEFAULT_DATA} not merged yet (python -m training.validate_data --merge)")
    records, problems = vd.validate_file(vd.DEFAULT_DATA)
    assert problems == [], "\n".join(problems)
    assert len(records) >= vd.MIN_TOTAL


# ---------------------------------------------------------------- checks


def test_clean_synthetic_file_has_no_problems():
    assert vd.check_records(_records(), SMALL) == []


def test_normalisation_ignores_case_whitespace_and_ids():
    a = "GG  <@123456789012345678> nice <:pog:111111111111111111>"
    b = "gg <@!876543210987654321>\tnice <:pog:222222222222222222>"
    assert vd.normalize_for_dedup(a) == vd.normalize_for_dedup(b)
    assert vd.message_id(a) == vd.message_id(b)
    assert vd.normalize_for_dedup("ｇｇ") == "gg"  # NFKC folds full-width letters


def test_exact_duplicate_after_normalisation_is_caught():
    records = _records()
    _retext(records[3], "Thanks <@111111111111111111> that FIXED it")
    _retext(records[40], "thanks <@222222222222222222>   that fixed it")
    problems = vd.check_records(records, SMALL)
    assert _matching(problems, "exact duplicate")


def test_near_duplicate_pair_is_caught():
    records = _records()
    base = "honestly the new map is gorgeous and the music in the last area is perfect"
    _retext(records[1], base)
    _retext(records[2], base + " lol")
    problems = vd.check_records(records, SMALL)
    near = _matching(problems, "near-duplicate")
    assert len(near) == 1 and records[1]["id"] in near[0] and records[2]["id"] in near[0]


def test_short_texts_are_not_near_duplicates():
    assert vd.near_duplicate_pairs(["gg wp", "gg wp!", "gg wp!!"]) == []


def test_near_duplicate_finder_matches_exact_jaccard():
    rng = random.Random(7)
    texts = [_words(rng, 10) for _ in range(60)]
    texts.append(texts[5] + " ok")  # very close to 5
    texts.append(texts[9].replace(" ", "  "))  # identical to 9 after normalisation
    pairs = {(i, j) for i, j, _ in vd.near_duplicate_pairs(texts)}
    assert pairs == {(5, 60), (9, 61)}


def test_split_leakage_is_caught():
    records = _records()
    base = "finally finished the boss fight after two hours of trying, what a relief honestly"
    _retext(records[1], base)
    _retext(records[2], base + "!!")
    records[1]["split"], records[2]["split"] = "train", "test"
    assert _matching(vd.check_records(records, SMALL), "split leakage")
    records[2]["split"] = "train"
    assert not _matching(vd.check_records(records, SMALL), "split leakage")


def test_bad_label_is_caught():
    records = _records()
    records[0]["label"] = "praise"
    assert _matching(vd.check_records(records, SMALL), "unknown label 'praise'")


def test_missing_label_is_caught():
    records = [r for r in _records() if r["label"] != "toxic"]
    assert _matching(vd.check_records(records, SMALL), "missing ['toxic']")


def test_schema_problems_are_caught():
    records = _records()
    del records[0]["server"]
    records[1]["hard_case"] = "made_up_tag"
    records[2]["lang"] = "English"
    records[3]["text"] = "   "
    records[4]["id"] = "0123456789ab"
    records[5]["extra"] = 1
    problems = vd.check_records(records, SMALL)
    for needle in (
        "missing field(s) ['server']",
        "made_up_tag",
        "lang must be",
        "non-empty",
        "does not match its text",
        "unexpected field(s) ['extra']",
    ):
        assert _matching(problems, needle), needle


def test_template_smell_is_caught():
    records = _records(per_label=20)
    comments = [r for r in records if r["label"] == "comment"]
    for k, rec in enumerate(comments[:3]):  # 3/20 = 15% > 8%
        _retext(rec, f"hey guys so {_words(random.Random(k), 8)}")
    problems = vd.check_records(records, SMALL)
    assert _matching(
        problems, "template smell: 15.0% of 'comment' messages open with 'hey guys so'"
    )
    _retext(comments[2], _words(random.Random(99), 8))  # 2/20 = 10%, still over
    assert _matching(vd.check_records(records, SMALL), "template smell")
    _retext(comments[1], _words(random.Random(98), 8))  # 1/20 = 5%, fine
    assert not _matching(vd.check_records(records, SMALL), "template smell")


def test_under_count_is_caught():
    problems = vd.check_records(_records())
    assert _matching(problems, f"need at least {vd.MIN_TOTAL}")
    assert len(_matching(problems, f"need at least {vd.MIN_PER_LABEL}")) == len(vd.LABELS)


def test_label_without_test_split_is_caught():
    records = _records()
    for rec in records:
        if rec["label"] == "spam":
            rec["split"] = "train"
    assert _matching(vd.check_records(records, SMALL), "label 'spam' has no test messages")


def test_invalid_json_line_is_reported(tmp_path):
    path = tmp_path / "messages.jsonl"
    path.write_text(json.dumps(_records()[0]) + "\n{not json\n")
    _, problems = vd.validate_file(path, SMALL)
    assert _matching(problems, "messages.jsonl:2: invalid JSON")


# ---------------------------------------------------------------- merge and splits


def _part_rows(label: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"text": _words(rng, 8), "label": label, "server": "art", "lang": "en", "hard_case": None}
        for _ in range(n)
    ]


def test_merge_dedups_assigns_ids_splits_and_sorts(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    rows = {label: _part_rows(label, 40, seed=k) for k, label in enumerate(vd.LABELS)}
    rows["comment"].append({**rows["comment"][0], "text": rows["comment"][0]["text"].upper()})
    rows["spam"].append({**rows["answer"][0], "label": "spam"})  # cross-label copy
    for label, part in rows.items():
        _write(parts / f"{label}.jsonl", part)
    out = tmp_path / "messages.jsonl"
    records, problems, notes = vd.merge_parts(parts, out)
    assert problems == []
    assert len(records) == 7 * 40
    assert _matching(notes, "cross-label exact duplicate") and _matching(notes, "dropped 1 exact")
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [list(r) for r in written[:1]] == [list(vd.FIELDS)]
    assert written == sorted(written, key=lambda r: (r["label"], r["id"]))
    assert all(r["id"] == vd.message_id(r["text"]) for r in written)
    for label in vd.LABELS:
        tests = sum(1 for r in written if r["label"] == label and r["split"] == "test")
        assert tests == 6  # round(0.15 * 40)
    first = out.read_bytes()
    vd.merge_parts(parts, out)
    assert out.read_bytes() == first  # deterministic
    assert vd.check_records(written, SMALL) == []


def _first_merge(tmp_path) -> tuple[Path, Path, list[dict]]:
    """40 messages per label merged once: (parts dir, merged file, merged records)."""
    parts = tmp_path / "parts"
    parts.mkdir()
    for k, label in enumerate(vd.LABELS):
        _write(parts / f"{label}.jsonl", _part_rows(label, 40, seed=k))
    out = tmp_path / "messages.jsonl"
    records, _, _ = vd.merge_parts(parts, out)
    return parts, out, records


def test_adding_messages_keeps_the_fixed_split_of_the_old_ones(tmp_path):
    parts, out, _ = _first_merge(tmp_path)
    before = {r["id"]: r["split"] for r in map(json.loads, out.read_text().splitlines())}
    _write(parts / "comment-more.jsonl", _part_rows("comment", 40, seed=99))
    records, problems, _ = vd.merge_parts(parts, out)
    assert problems == [] and len(records) == 8 * 40
    after = {r["id"]: r["split"] for r in records}
    assert all(after[i] == split for i, split in before.items())  # nothing old moved
    new_tests = sum(1 for i, split in after.items() if i not in before and split == "test")
    assert new_tests == 6  # round(0.15 * 80) = 12 comment tests, 6 of them already there


def test_frozen_test_split_sends_new_messages_to_train_unless_they_copy_a_test_one(tmp_path):
    parts, out, first = _first_merge(tmp_path)
    test_text = next(r["text"] for r in first if r["split"] == "test" and r["label"] == "comment")
    copy = {"text": test_text + " lol", "label": "comment", "server": "art", "lang": "en", "hard_case": None}
    _write(parts / "comment-more.jsonl", [*_part_rows("comment", 40, seed=99), copy])
    records, problems, notes = vd.merge_parts(parts, out, freeze_test=True)
    assert problems == [] and len(records) == 8 * 40 + 1
    before = {r["id"]: r["split"] for r in first}
    new = {r["text"]: r["split"] for r in records if r["id"] not in before}
    assert new.pop(copy["text"]) == "test"  # a near-copy of a test message never trains
    assert set(new.values()) == {"train"}
    assert all(r["split"] == before[r["id"]] for r in records if r["id"] in before)
    assert _matching(notes, "test split frozen: 1 new message(s) joined test")


def test_merge_refuses_malformed_parts(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "comment.jsonl").write_text('{"text": "hi", "label": "comment"}\nnot json\n')
    out = tmp_path / "messages.jsonl"
    _, problems, _ = vd.merge_parts(parts, out)
    assert _matching(problems, "comment.jsonl:1: missing field(s)")
    assert _matching(problems, "comment.jsonl:2: invalid JSON")
    assert not out.exists()


def test_near_duplicate_groups_share_a_split():
    rng = random.Random(3)
    records = []
    for _ in range(30):
        base = _words(rng, 9)
        for variant in (base, base + " lol", base + " !!"):
            records.append({"id": vd.message_id(variant), "text": variant, "label": "comment"})
    for _ in range(110):
        text = _words(rng, 9)
        records.append({"id": vd.message_id(text), "text": text, "label": "comment"})
    vd.assign_splits(records)
    by_base: dict[str, set[str]] = {}
    for rec in records[:90]:
        by_base.setdefault(rec["text"].removesuffix(" lol").removesuffix(" !!"), set()).add(
            rec["split"]
        )
    assert all(len(splits) == 1 for splits in by_base.values())
    tests = sum(r["split"] == "test" for r in records)
    assert 0.12 * len(records) <= tests <= 0.15 * len(records)
    assert any(splits == {"test"} for splits in by_base.values())


# ---------------------------------------------------------------- profile and CLI


def test_profile_counts_discord_features():
    records = _records()
    _retext(
        records[0], "gg <@123456789012345678> see <#234567890123456789> <:pog:345678901234567890>"
    )
    _retext(records[1], "look https://example.com 🎉 and `x = 1`\n```py\nprint(1)\n```")
    profile = vd.build_profile(records)
    n_question = 12
    assert profile["splits"]["question"] == {"train": 10, "test": 2}
    feats = profile["features"]["question"]
    assert feats["mention"] == feats["channel"] == feats["custom_emoji"] == round(1 / n_question, 3)
    assert (
        feats["url"]
        == feats["emoji"]
        == feats["code_block"]
        == feats["inline_code"]
        == round(1 / n_question, 3)
    )
    text = vd.format_profile(profile)
    assert "label" in text and "question" in text and "p50" in text


def test_cli_reports_problems_and_writes_json(tmp_path, capsys):
    data = _write(tmp_path / "messages.jsonl", _records())
    out = tmp_path / "profile.json"
    assert vd.main(["--data", str(data), "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "INVALID" in printed and f"need at least {vd.MIN_TOTAL}" in printed
    profile = json.loads(out.read_text())
    assert profile["total"] == 7 * 12 and profile["problems"]


def test_cli_merge_then_validate(tmp_path, capsys):
    parts = tmp_path / "parts"
    parts.mkdir()
    for k, label in enumerate(vd.LABELS):
        _write(parts / f"{label}.jsonl", _part_rows(label, 20, seed=k))
    data = tmp_path / "messages.jsonl"
    assert vd.main(["--merge", "--parts", str(parts), "--data", str(data)]) == 1  # under-count only
    printed = capsys.readouterr().out
    assert f"wrote {data}" in printed
    _, problems = vd.validate_file(data, SMALL)
    assert problems == []
