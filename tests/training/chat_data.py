"""Small labelled chat data for the training tests.

The sentences are written here (not copied from training/data) and varied by prefixes and
suffixes, so a tiny model can learn something in a few epochs.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

SENTENCES: dict[str, tuple[str, ...]] = {
    "question": (
        "how do i reset my password on the dashboard",
        "anyone know a good tutorial for shaders",
        "what time does the tournament start",
        "is there a way to export my save file",
        "which gpu should i buy for streaming",
        "how do you get the blue role",
    ),
    "answer": (
        "run pip install -U pip first then try again",
        "it's pinned in #faq, scroll up",
        "you need to enable developer mode in settings",
        "restart the client and clear the cache, that fixes it",
        "the event starts at 8pm utc on saturday",
        "just use the export button under profile",
    ),
    "comment": (
        "gg that was a great match",
        "thanks that worked perfectly",
        "morning all, coffee time",
        "that build looks so clean",
        "lol same thing happened to me",
        "congrats on the release everyone",
    ),
    "bug_report": (
        "the rank command errors since the update",
        "crash on launch after patch 1.4.2",
        "the login button does nothing on firefox",
        "bot stopped responding to play commands yesterday",
        "images fail to upload in the gallery channel",
        "the leaderboard shows negative scores again",
    ),
    "suggestion": (
        "we should add a showcase channel",
        "would be cool if the bot could remind us of events",
        "could we get a dark theme for the website",
        "maybe add a cooldown to the daily command",
        "what if we had weekly movie nights",
        "please add a search box to the wiki",
    ),
    "spam": (
        "free nitro claim here fast discord.gg/abc123",
        "dm me for cheap boosts best prices",
        "join my server for free robux giveaway",
        "earn 500 dollars a day click my bio link",
        "selling accounts cheap dm now limited offer",
        "win a free iphone visit bit.ly/win-now",
    ),
    "toxic": (
        "you are a braindead idiot",
        "nobody wants you here, leave",
        "shut up you worthless loser",
        "go away nobody likes your trash opinions",
        "you are pathetic and stupid",
        "get lost you clown, everyone hates you",
    ),
}
PREFIXES = ("", "hey ", "ok so ", "btw ")
SUFFIXES = ("", " pls", "!!", " :)")


def chat_rows(per_label: int = 16, seed: int = 7, test_share: float = 0.25) -> list[dict]:
    """Rows in the dataset schema (id, text, label, split), deterministic for a seed."""
    rng = random.Random(seed)
    rows = []
    for label, sentences in SENTENCES.items():
        variants = [
            f"{prefix}{sentence}{suffix}"
            for sentence, prefix, suffix in itertools.product(sentences, PREFIXES, SUFFIXES)
        ]
        rng.shuffle(variants)
        for i, text in enumerate(variants[:per_label]):
            split = "test" if i < round(per_label * test_share) else "train"
            rows.append({"id": f"{label}-{i}", "text": text, "label": label, "split": split})
    rng.shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
