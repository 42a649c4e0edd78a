"""Light, label-preserving noise for chat messages (training only).

Real chat differs from a curated dataset mostly on the surface: case, typos, missing
punctuation, trailing emoji. Applying one such change to a fraction of the training
messages each epoch makes the model lean on wording, not on those quirks. None of the
changes can turn one label into another (no words are added or removed).
"""

from __future__ import annotations

import random
import string

_EMOJI = ("😂", "🙏", "👀", "💀", "😅", "👍", "🔥", ":)", "lol")


def _lower(text: str, rng: random.Random) -> str:
    return text.lower()


def _upper(text: str, rng: random.Random) -> str:
    return text.upper()


def _capitalise(text: str, rng: random.Random) -> str:
    return text[:1].upper() + text[1:]


def _strip_punctuation(text: str, rng: random.Random) -> str:
    stripped = text.rstrip("?!.,;: ")
    return stripped or text


def _typo(text: str, rng: random.Random) -> str:
    """Swap two neighbouring letters inside one word (never touching markup or URLs)."""
    positions = [
        i
        for i in range(len(text) - 1)
        if text[i].isalpha() and text[i + 1].isalpha() and text[i] != text[i + 1]
    ]
    if not positions:
        return text
    i = rng.choice(positions)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _drop_letter(text: str, rng: random.Random) -> str:
    positions = [
        i
        for i in range(1, len(text) - 1)
        if text[i] in string.ascii_letters and text[i - 1].isalpha() and text[i + 1].isalpha()
    ]
    if not positions:
        return text
    i = rng.choice(positions)
    return text[:i] + text[i + 1 :]


def _emoji(text: str, rng: random.Random) -> str:
    return f"{text} {rng.choice(_EMOJI)}"


_CHANGES = (_lower, _upper, _capitalise, _strip_punctuation, _typo, _drop_letter, _emoji)
# Shouting is rarer than the rest in real chat.
_WEIGHTS = (3, 1, 2, 3, 3, 2, 2)


def augment(text: str, rng: random.Random) -> str:
    """Return ``text`` with one random surface change."""
    change = rng.choices(_CHANGES, weights=_WEIGHTS, k=1)[0]
    return change(text, rng)
