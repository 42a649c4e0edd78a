"""The benchmark workload: a Discord-like message-length mix and texts of exactly those lengths.

Lengths are in tokens *as the model sees them* under a reference tokenizer, special tokens
included ([CLS] ... [SEP]). They are drawn from a lognormal fitted to two quantiles of
Discord chat (median 16 tokens, 90th percentile 65), clipped below at 3 tokens ("ok",
"lol") and above at `DISCORD_MAX_TOKENS` (a 2,000-character message). Messages longer
than the model's `max_length` are kept at full length: the tokenizer pays for the whole
text, the model sees the truncated head - exactly what happens in production.

Texts are assembled from a fixed word pool (benchmark inputs only, never training data)
until the reference tokenizer, after `classifier.normalize`, gives the drawn length; a
short correction loop makes the lengths exact for any WordPiece/BPE tokenizer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

MEDIAN_TOKENS = 16
P90_TOKENS = 65
MIN_TOKENS = 3
DISCORD_MAX_TOKENS = 500  # ~2,000 characters at ~4 characters per token
DISCORD_MAX_CHARS = 2000  # a longer text is cut at a word boundary (Discord's limit)
Z90 = 1.2815515655446004  # standard normal 90th percentile

# Chat-like words, a few technical terms that split into several word pieces, and
# punctuation. Nothing here may trigger `normalize` rewrites (no URLs, "<", "||", "```").
_WORDS = """
    i you we they he she it the a an and or but so if then because when where why how what
    who which is are was were be been being do does did have has had can could will would
    should might must not no yes yeah yep nope ok okay lol lmao haha thanks thank please pls
    hey hi hello morning night everyone guys anyone someone somebody nobody here there this
    that these those my your our their me him her them us just really very too also still
    already maybe probably actually basically literally definitely kinda sorta idk imo tbh
    ngl btw fyi gg wp nice cool great awesome good bad weird broken fixed works working
    work worked try tried trying use used using need needs needed want wanted know knew
    think thought see saw look looking looks find found get got give make made run ran
    running install installed update updated restart restarted reboot delete deleted add
    added remove removed change changed check checked open opened close closed click
    server channel message messages bot role roles mod mods admin ping link file files
    folder code error errors bug bugs issue issues crash crashes crashed fix version
    release build builds test tests config settings login account password email game
    games play playing played match rank team stream video music song meme memes event
    events vote poll today tomorrow yesterday week weekend time minute minutes hour hours
    day days year first last next new old same other another every all some any more most
    less few many much little big small long short fast slow quick easy hard simple
    python javascript typescript rust java node npm pip docker linux windows mac android
    iphone browser chrome firefox discord github api database sql query script function
    class module package library framework terminal command prompt keyboard mouse monitor
    laptop desktop phone battery network wifi internet connection timeout latency memory
    kubernetes asyncio traceback dockerfile segfault pytorch tensorflow webpack nginx
    postgresql sqlite redis microservice refactoring dependencies deprecated undefined
    nullpointerexception stacktrace localhost middleware authentication authorization
    screenshot troubleshooting reinstalling uninstalled configuration environment
    variable variables compiler interpreter recompile subprocess multithreading
    unbelievable absolutely ridiculous hilarious congratulations appreciate apologies
"""
WORD_POOL: tuple[str, ...] = (
    *_WORDS.split(),
    *("?", "!", ",", ".", ":)", ":(", "...", "'s", "-", "#1", "42", "2024", "10", "100"),
)
PUNCTUATION = frozenset({"?", "!", ",", ".", "...", "'s"})


@dataclass
class Workload:
    """Texts plus the token lengths they were built to (reference tokenizer, specials incl.)."""

    texts: list[str]
    lengths: list[int]  # full length under the reference tokenizer (before truncation)
    seed: int
    max_length: int  # what the model sees: min(length, max_length)
    tokenizer: str  # path of the reference tokenizer.json

    @property
    def model_lengths(self) -> list[int]:
        return [min(n, self.max_length) for n in self.lengths]

    def head(self, n: int) -> Workload:
        return Workload(self.texts[:n], self.lengths[:n], self.seed, self.max_length, self.tokenizer)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Workload:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def lognormal_params(median: float = MEDIAN_TOKENS, p90: float = P90_TOKENS) -> tuple[float, float]:
    """(mu, sigma) of the lognormal whose median and 90th percentile are the given ones."""
    return math.log(median), math.log(p90 / median) / Z90


def sample_lengths(
    n: int,
    seed: int,
    *,
    median: float = MEDIAN_TOKENS,
    p90: float = P90_TOKENS,
    low: int = MIN_TOKENS,
    high: int = DISCORD_MAX_TOKENS,
) -> np.ndarray:
    """`n` token lengths from the fitted lognormal, rounded and clipped to [low, high]."""
    mu, sigma = lognormal_params(median, p90)
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(mu, sigma, size=n)
    return np.clip(np.rint(raw), low, high).astype(int)


def quantiles(lengths: Sequence[int], max_length: int | None = None) -> dict[str, float]:
    """Summary of a length sample (p10 ... p99, mean, max, share truncated at max_length)."""
    arr = np.asarray(lengths, dtype=float)
    if arr.size == 0:
        return {"n": 0}
    out: dict[str, float] = {"n": int(arr.size), "mean": round(float(arr.mean()), 2)}
    for q in (10, 25, 50, 75, 90, 95, 99):
        out[f"p{q}"] = float(np.percentile(arr, q))
    out["max"] = float(arr.max())
    if max_length is not None:
        out["share_over_max_length"] = round(float((arr > max_length).mean()), 4)
    return out


class _Counter:
    """Token counts under a tokenizer.json, through `normalize` like the classifier does."""

    def __init__(self, tokenizer_path: str | Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.specials = len(self.tokenizer.encode("").ids)

    def lengths(self, texts: Sequence[str]) -> list[int]:
        from classifier.preprocess import normalize

        encodings = self.tokenizer.encode_batch([normalize(t) for t in texts])
        return [len(e.ids) for e in encodings]

    def word_costs(self, words: Sequence[str]) -> list[int]:
        encodings = self.tokenizer.encode_batch(list(words), add_special_tokens=False)
        return [len(e.ids) for e in encodings]


def _join(words: list[str]) -> str:
    text = ""
    for word in words:
        if not text:
            text = word
        elif word in PUNCTUATION:
            text += word
        else:
            text += " " + word
    return text[:1].upper() + text[1:] if text else text


def build_texts(
    lengths: Sequence[int], tokenizer_path: str | Path, seed: int, *, passes: int = 6
) -> list[str]:
    """Texts whose token length (specials included) under the tokenizer equals `lengths`."""
    counter = _Counter(tokenizer_path)
    costs = counter.word_costs(WORD_POOL)
    pool = [(w, c) for w, c in zip(WORD_POOL, costs, strict=True) if c >= 1]
    singles = [w for w, c in pool if c == 1 and w not in PUNCTUATION]
    if not singles:
        raise ValueError(f"{tokenizer_path}: no single-token word in the pool; cannot build texts")
    by_cost: dict[int, list[str]] = {}
    for w, c in pool:
        by_cost.setdefault(c, []).append(w)
    max_cost = max(by_cost)
    # Short words are far more common in chat: one-piece words are weighted by 1/length,
    # punctuation gets 8% of picks; ~4 characters per token (spaces included) results.
    ones = by_cost[1]
    weights = np.array([0.0 if w in PUNCTUATION else 1.0 / len(w) for w in ones])
    weights *= 0.92 / weights.sum()
    marks = [i for i, w in enumerate(ones) if w in PUNCTUATION]
    weights[marks] = 0.08 / len(marks) if marks else 0.0
    weights /= weights.sum()
    rng = np.random.default_rng(seed + 1)

    def words_for(budget: int) -> list[str]:
        words: list[str] = []
        while budget > 0:
            # Mostly one-piece words; a multi-piece word ~12% of the time when it fits
            # (two pieces 80% of those), which gives ~4 characters per token like chat.
            if budget > 1 and rng.random() < 0.12:
                cost = 2 if rng.random() < 0.8 else int(rng.integers(3, max(3, max_cost) + 1))
                cost = min(cost, budget)
                choices = by_cost.get(cost)
                if choices:
                    words.append(choices[int(rng.integers(len(choices)))])
                    budget -= cost
                    continue
            word = ones[int(rng.choice(len(ones), p=weights))]
            if word in PUNCTUATION and (not words or words[-1] in PUNCTUATION):
                word = singles[int(rng.integers(len(singles)))]
            words.append(word)
            budget -= 1
        return words

    targets = [int(n) for n in lengths]
    word_lists = [words_for(max(1, n - counter.specials)) for n in targets]
    texts = [_join(w) for w in word_lists]
    # Sub-word merges across punctuation or casing can shift a count by one or two: fix up.
    for _ in range(passes):
        realised = counter.lengths(texts)
        wrong = [i for i, (r, t) in enumerate(zip(realised, targets, strict=True)) if r != t]
        if not wrong:
            break
        for i in wrong:
            words = word_lists[i]
            diff = targets[i] - realised[i]
            if diff > 0:
                words.extend(singles[int(rng.integers(len(singles)))] for _ in range(diff))
            else:
                for _ in range(-diff):
                    if len(words) > 1:
                        words.pop()
            texts[i] = _join(words)
    return texts


def _cap(text: str) -> str:
    return text if len(text) <= DISCORD_MAX_CHARS else text[:DISCORD_MAX_CHARS].rsplit(" ", 1)[0]


def build_workload(
    n: int, tokenizer_path: str | Path, *, seed: int = 6, max_length: int = 128
) -> Workload:
    """`n` messages in arrival order (the order is random, so any prefix is a fair sample)."""
    lengths = sample_lengths(n, seed)
    texts = [_cap(t) for t in build_texts(lengths, tokenizer_path, seed)]
    realised = _Counter(tokenizer_path).lengths(texts)
    return Workload(texts, realised, seed, max_length, str(tokenizer_path))


def describe(workload: Workload, tokenizer_path: str | Path | None = None) -> dict[str, object]:
    """Realised quantiles of the workload under `tokenizer_path` (default: the reference one)."""
    path = tokenizer_path or workload.tokenizer
    full = _Counter(path).lengths(workload.texts) if tokenizer_path else workload.lengths
    seen = [min(n, workload.max_length) for n in full]
    mu, sigma = lognormal_params()
    return {
        "tokenizer": str(path),
        "distribution": {
            "kind": "lognormal, rounded, clipped",
            "mu": round(mu, 4),
            "sigma": round(sigma, 4),
            "median_target": MEDIAN_TOKENS,
            "p90_target": P90_TOKENS,
            "clip": [MIN_TOKENS, DISCORD_MAX_TOKENS],
            "seed": workload.seed,
        },
        "full_length_tokens": quantiles(full, workload.max_length),
        "model_tokens": quantiles(seen),
        "max_length": workload.max_length,
        "mean_chars": round(float(np.mean([len(t) for t in workload.texts])), 1),
    }
