"""Discord-aware text normalisation ("discord-v1"), shared by training and inference.

Every message goes through `normalize()` before tokenizing, at training and at inference
time, so the model never sees raw ids, URLs or markup it cannot generalise from. Design:

- Discord markup that carries no meaning beyond its kind becomes a fixed marker:
  user mentions -> ``@user``, role mentions -> ``@role``, channels -> ``#channel``,
  timestamps -> ``[time]``, custom emoji ``<:name:id>`` -> ``:name:`` (the name carries
  sentiment, the id does not), slash-command mentions ``</name:id>`` -> ``/name``.
- URLs become ``[url] domain`` (``www.`` dropped, path dropped). The domain is kept on
  purpose: ``github.com`` / ``docs.python.org`` are strong *answer* signals, URL
  shorteners and odd domains are strong *spam* signals, while paths and query strings
  are noise (and sometimes personal data). Discord invites get their own marker
  ``[invite]`` because invite links are the single most common spam payload.
- Fenced code blocks become ``[code] lang first-few-tokens [/code]``: the language and
  the first tokens (e.g. ``Traceback (most recent call last)``) say "bug report" or
  "answer"; the rest of a long paste would only eat the token budget.
- Inline code is kept verbatim (it is short and usually a name: `pip install x`).
- Spoilers ``||x||`` are unwrapped to ``[spoiler] x`` (spammers hide payloads in them).
- Runs of one character longer than 3 are cut to 3 (``soooooo`` -> ``sooo``,
  ``!!!!!!`` -> ``!!!``); digits are exempt so numbers keep their value.
- NFKC (fullwidth / "𝐛𝐨𝐥𝐝" spam letters fold to ASCII), control and invisible
  formatting characters removed, lone surrogates replaced by U+FFFD, runs of combining
  marks ("zalgo") trimmed to 3 per base character, whitespace collapsed to one space.

The function is deterministic, idempotent (``normalize(normalize(x)) == normalize(x)``),
total (never raises on any ``str``) and uses only pre-compiled regexes.
"""

from __future__ import annotations

import re
import sys
import unicodedata

__all__ = ["MARKERS", "PREPROCESSING", "normalize"]

PREPROCESSING = "discord-v1"

# Fixed tokens `normalize` emits. Tokenizers should treat them as whole (added) tokens.
MARKERS: tuple[str, ...] = (
    "@user",
    "@role",
    "#channel",
    "[url]",
    "[invite]",
    "[code]",
    "[/code]",
    "[time]",
    "[spoiler]",
)

MAX_COMBINING_RUN = 3
MAX_REPEAT = 3
CODE_SNIPPET_TOKENS = 8
CODE_SNIPPET_CHARS = 80

# Invisible "format" characters that are used to dodge filters or flip text direction.
# ZWJ/ZWNJ (U+200D/U+200C) are kept: emoji sequences and Persian/Indic text need them.
_INVISIBLE = (
    "\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
_CONTROL_RE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_INVISIBLE}]+")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _combining_class() -> str:
    """Character class of every combining mark (Mn, Mc, Me), built once at import."""
    ranges: list[str] = []
    start = prev = -1
    # Planes 3-13 hold no combining marks; skipping them keeps the import fast.
    for cp in (*range(0x30000), *range(0xE0000, sys.maxunicode + 1)):
        if unicodedata.category(chr(cp)) in ("Mn", "Mc", "Me"):
            if cp == prev + 1:
                prev = cp
                continue
            if start >= 0:
                ranges.append(_range(start, prev))
            start = prev = cp
    if start >= 0:
        ranges.append(_range(start, prev))
    return "[" + "".join(ranges) + "]"


def _range(start: int, end: int) -> str:
    return (
        re.escape(chr(start)) if start == end else f"{re.escape(chr(start))}-{re.escape(chr(end))}"
    )


_MARK = _combining_class()
_ZALGO_RE = re.compile(f"({_MARK}{{{MAX_COMBINING_RUN}}}){_MARK}+")

_CODE_BLOCK_RE = re.compile(r"```(?:([A-Za-z0-9_+#.-]{1,20})[ \t]*\n)?(.*?)```", re.DOTALL)
_USER_RE = re.compile(r"<@!?\d+>")
_ROLE_RE = re.compile(r"<@&\d+>")
_CHANNEL_RE = re.compile(r"<#\d+>")
_SLASH_RE = re.compile(r"</([\w -]{1,64}):\d+>")
_EMOJI_RE = re.compile(r"<a?:(\w{1,64}):\d+>")
_TIME_RE = re.compile(r"<t:-?\d+(?::[tTdDfFR])?>")
_INVITE_RE = re.compile(
    r"<?(?:https?://)?(?:www\.)?(?:discord(?:app)?\.com/invite|discord\.gg|dsc\.gg)/[\w-]+/?>?",
    re.IGNORECASE,
)
_URL_RE = re.compile(r"<?(?:https?://|www\.)([^\s/?#<>|]*)[^\s<>|]*>?", re.IGNORECASE)
# Pipe *runs* on both sides and no pipe inside: leftovers can never pair up on a second pass.
_SPOILER_RE = re.compile(r"\|{2,}([^|]+)\|{2,}")
_REPEAT_RE = re.compile(rf"([^\d\s])\1{{{MAX_REPEAT},}}")
_SPACE_RE = re.compile(r"\s+")
_NON_HOST_RE = re.compile(r"[^\w.-]+")
_WWW_RE = re.compile(r"(?:www\.)+")
# Characters that are not str.isspace() but render blank; folded to a plain space.
_BLANK_RE = re.compile("[\u2800\u3164\uffa0\u115f\u1160]+")


def normalize(text: str) -> str:
    """Return the canonical "discord-v1" form of a chat message (see module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"normalize() expects str, got {type(text).__name__}")
    text = _SURROGATE_RE.sub("\ufffd", text)
    text = _CONTROL_RE.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    if "```" in text:
        text = _CODE_BLOCK_RE.sub(_code_block, text)
    if "<" in text:  # every Discord markup construct starts with "<"
        text = _TIME_RE.sub(" [time] ", text)
        text = _ROLE_RE.sub(" @role ", text)
        text = _USER_RE.sub(" @user ", text)
        text = _CHANNEL_RE.sub(" #channel ", text)
        text = _SLASH_RE.sub(r" /\1 ", text)
        text = _EMOJI_RE.sub(r" :\1: ", text)
    if "/" in text or "www." in text.lower():
        text = _INVITE_RE.sub(" [invite] ", text)
        text = _URL_RE.sub(_url, text)
    if "||" in text:
        text = _SPOILER_RE.sub(r" [spoiler] \1 ", text)
    text = _ZALGO_RE.sub(r"\1", text)
    text = _REPEAT_RE.sub(lambda m: m.group(1) * MAX_REPEAT, text)
    text = _BLANK_RE.sub(" ", text)
    text = _SPACE_RE.sub(" ", text).strip()
    if not unicodedata.is_normalized("NFKC", text):
        # Replacements can put a base letter next to an orphan combining mark.
        text = unicodedata.normalize("NFKC", text)
    return text


def _code_block(match: re.Match[str]) -> str:
    lang = (match.group(1) or "").lower()
    words = match.group(2).split()
    snippet = " ".join(words[:CODE_SNIPPET_TOKENS])[:CODE_SNIPPET_CHARS]
    # Strip backticks so a snippet can never re-form a code fence on a second pass.
    snippet = snippet.replace("`", "'")
    parts = ["[code]", lang, snippet, "[/code]"]
    return " " + " ".join(p for p in parts if p) + " "


def _url(match: re.Match[str]) -> str:
    domain = match.group(1).lower().split("@")[-1].split(":")[0]
    # Only host characters survive, and no "www." that could look like a new URL later.
    domain = _WWW_RE.sub("", _NON_HOST_RE.sub("", domain)).strip(".-")
    return f" [url] {domain} " if domain else " [url] "
