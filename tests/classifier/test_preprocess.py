"""`normalize`: every Discord construct, unicode hygiene, idempotence and totality."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier.preprocess import MARKERS, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hi <@123456789012345678>", "hi @user"),
        ("hi <@!123>", "hi @user"),
        ("ping <@&42> now", "ping @role now"),
        ("see <#987>", "see #channel"),
        ("nice <:pepe_happy:112233>", "nice :pepe_happy:"),
        ("<a:dance:99> party", ":dance: party"),
        ("starts <t:1700000000:R>", "starts [time]"),
        ("at <t:1700000000>", "at [time]"),
        ("run </deploy prod:123>", "run /deploy prod"),
        ("docs https://www.GitHub.com/a/b?q=1#x here", "docs [url] github.com here"),
        ("wrapped <https://docs.python.org/3/>", "wrapped [url] docs.python.org"),
        ("www.example.org/page", "[url] example.org"),
        ("login https://user:pw@host.io:8080/x", "login [url] host.io"),
        ("join discord.gg/AbC123 now", "join [invite] now"),
        ("join https://discord.com/invite/xyz", "join [invite]"),
        ("join https://discordapp.com/invite/xyz!", "join [invite] !"),
        (
            "```py\nimport os\nprint(os.getcwd())\n```",
            "[code] py import os print(os.getcwd()) [/code]",
        ),
        ("```\nno language here\n```", "[code] no language here [/code]"),
        ("use `pip install -U pip` first", "use `pip install -U pip` first"),
        ("||the butler did it||", "[spoiler] the butler did it"),
        ("sooooooo good", "sooo good"),
        ("what!!!!!!!!", "what!!!"),
        ("1000000 users", "1000000 users"),
        ("a\x00b\x07c", "abc"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("  lots \n\n of\t\twhitespace  ", "lots of whitespace"),
        ("ＦＲＥＥ 𝐍𝐈𝐓𝐑𝐎", "FREE NITRO"),
        ("zero\u200bwidth\u202eflip", "zerowidthflip"),
        ("family 👨\u200d👩\u200d👧", "family 👨\u200d👩\u200d👧"),
        ("", ""),
        ("   \n\t ", ""),
        ("مرحبا بالعالم", "مرحبا بالعالم"),
        ("שלום עולם", "שלום עולם"),
        ("😂😂😂😂😂", "😂😂😂"),
    ],
)
def test_normalize_cases(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_zalgo_is_trimmed_to_three_marks_per_letter() -> None:
    zalgo = "z" + "\u0315\u0321\u0322\u0327\u0328\u0336" * 5 + "a"
    out = normalize(zalgo)
    assert out.startswith("z") and out.endswith("a")
    assert len(out) <= 1 + 3 + 1


def test_long_code_block_keeps_only_a_short_head() -> None:
    code = "```python\n" + "\n".join(f"line_{i} = {i}" for i in range(500)) + "\n```"
    out = normalize(code)
    assert out.startswith("[code] python line_0 = 0")
    assert out.endswith("[/code]")
    assert len(out) < 120


def test_markers_are_what_normalize_emits() -> None:
    text = normalize("<@1> <@&2> <#3> https://a.io discord.gg/x ```x``` <t:1> ||s||")
    for marker in MARKERS:
        assert marker in text


def test_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="expects str"):
        normalize(b"bytes")  # type: ignore[arg-type]


_FRAGMENTS = st.sampled_from(
    [
        "<@123>",
        "<@!1>",
        "<@&2>",
        "<#3>",
        "<:e:4>",
        "<a:e:5>",
        "<t:6:R>",
        "</c:7>",
        "https://",
        "http://x.io/a",
        "www.",
        "www.www.",
        "wwww.",
        "discord.gg/",
        "discord.gg/a",
        "```",
        "```py\n",
        "`",
        "||",
        "|",
        "<",
        ">",
        "@",
        ":",
        "/",
        ".",
        "!",
        "o",
        "\n",
        " ",
        "\u0301",
        "\u0316",
        "\u200b",
        "\u200d",
        "\x00",
        "\ud800",
        "ｗ",
        "𝐚",
        "\u3164",
        "\u2800",
        "é",
        "ﬁ",
        "0",
        "A",
    ]
)
_MESSY_TEXT = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=5)), max_size=25).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_MESSY_TEXT, st.text()))
def test_normalize_is_total_and_idempotent(text: str) -> None:
    once = normalize(text)
    assert isinstance(once, str)
    assert normalize(once) == once
    assert once == once.strip()
    assert "\x00" not in once
    once.encode("utf-8")  # no lone surrogates survive


def test_normalize_is_deterministic_on_long_input() -> None:
    text = ("hey <@1> look https://x.io/a sooooo ||x|| " * 600)[:20_000]
    assert normalize(text) == normalize(text)
