"""Build a tiny, randomly initialised model directory in a few seconds (tests and demos).

The directory has exactly the layout `classifier` reads (see docs/architecture.md): an
optimum-exported `model.onnx`, the HF `config.json`, a fast tokenizer and
`classifier.json`, plus the PyTorch weights (`model.safetensors`) so tests can compare
ONNX against PyTorch. Nothing touches the network.

    python -m training.tiny OUT_DIR [--arch distilbert|bert] [--multi-label] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os
import string
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from classifier.preprocess import MARKERS, PREPROCESSING, normalize
from training.arguments import DEFAULT_LABELS

MAX_LENGTH = 128
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
ONNX_OPSET = 18
# Random softmax scores sit near 1/7: a lower bar makes some tiny-model predictions confident
# and others uncertain, so tests of downstream code exercise both paths.
SINGLE_LABEL_THRESHOLD = 0.3

# Enough chat-like text for WordPiece to learn real sub-words; normalised like real data.
_CORPUS: tuple[str, ...] = (
    "anyone know why pip hangs?",
    "hey <@123> did you try reinstalling the package?",
    "how do I install python on windows",
    "try running pip install --upgrade pip first",
    "lol that is so funny",
    "the bot crashes when I use the /play command",
    "Traceback (most recent call last): ValueError: invalid literal",
    "it would be nice if we had a channel for memes",
    "can we add a dark mode to the website?",
    "FREE NITRO click here https://discord.gg/freestuff",
    "get free robux now www.totally-legit.xyz",
    "you are an idiot and nobody likes you",
    "shut up noob",
    "thanks, that fixed it!",
    "check the docs at https://docs.python.org/3/library/asyncio.html",
    "```python\nimport asyncio\nasyncio.run(main())\n```",
    "is there a way to run this without sudo?",
    "what version of node are you using",
    "the latest release broke login on mobile",
    "error 404 when I open the settings page",
    "suggestion: pin the rules message in #general",
    "good morning everyone :wave:",
    "gg well played",
    "I think the answer is to set the timeout to 30 seconds",
    "you need to restart the server after changing the config",
    "why does my code not work??",
    "please add support for postgres",
    "spoiler ||the ending is sad||",
    "meeting starts <t:1700000000:R>",
    "this game is sooooo good!!!!!!",
    "does anyone have a link to the tutorial",
    "here is the fix: use a virtual environment",
    "bug: the app freezes when uploading large files",
    "maybe we could vote on the next event",
    "buy cheap followers at our shop",
    "nobody asked, go away loser",
    "welcome to the server! read the rules",
    "which database should I use for a small project",
    "use sqlite, it is simple and fast",
    "the download button does nothing on firefox",
)


def build_tiny_model(
    out_dir: str | os.PathLike[str],
    *,
    arch: str = "distilbert",
    labels: Sequence[str] = DEFAULT_LABELS,
    multi_label: bool = False,
    seed: int = 0,
) -> Path:
    """Write a tiny random `arch` classifier with `labels` to `out_dir`; return the path."""
    if arch not in ("distilbert", "bert"):
        raise ValueError(f"arch must be 'distilbert' or 'bert', got {arch!r}")
    labels = tuple(labels)
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ValueError(f"need at least two distinct labels, got {labels!r}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = _build_tokenizer(arch)
    model = _build_model(arch, labels, multi_label, seed, vocab_size=len(tokenizer))
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _export_onnx(out)
    (out / "classifier.json").write_text(
        json.dumps(
            {
                "version": f"tiny-{arch}-{'multi' if multi_label else 'single'}-seed{seed}",
                "max_length": MAX_LENGTH,
                "thresholds": dict.fromkeys(labels, 0.5 if multi_label else SINGLE_LABEL_THRESHOLD),
                "preprocessing": PREPROCESSING,
                "metrics": {},
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return out


def _build_tokenizer(arch: str):
    """A small uncased WordPiece tokenizer; preprocessing markers become whole tokens."""
    from transformers import BertTokenizerFast, DistilBertTokenizerFast

    cls = DistilBertTokenizerFast if arch == "distilbert" else BertTokenizerFast
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "vocab.txt"
        vocab_file.write_text("\n".join(_wordpiece_vocab()) + "\n", encoding="utf-8")
        tokenizer = cls(vocab_file=str(vocab_file), do_lower_case=True, model_max_length=MAX_LENGTH)
    tokenizer.add_tokens(list(MARKERS))
    return tokenizer


def _wordpiece_vocab() -> list[str]:
    """Every corpus word, every character and its ``##`` continuation, in a fixed order.

    The vocab is counted with the `tokenizers` BERT normalizer and pre-tokenizer rather
    than trained with `WordPieceTrainer`, whose merge tie-breaking differs from run to run:
    the same seed must give the same model, byte for byte.
    """
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    normalizer = BertNormalizer(lowercase=True)
    pre_tokenizer = BertPreTokenizer()
    chars = set(string.ascii_lowercase + string.digits + string.punctuation)
    words: set[str] = set()
    for text in _CORPUS:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(normalize(text))):
            words.add(word)
            chars.update(word)
    return [
        *SPECIAL_TOKENS,
        *sorted(chars),
        *sorted(f"##{c}" for c in chars),
        *sorted(words - chars),
    ]


def _build_model(arch: str, labels: tuple[str, ...], multi_label: bool, seed: int, vocab_size: int):
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        DistilBertConfig,
        DistilBertForSequenceClassification,
    )

    common = {
        "vocab_size": vocab_size,
        "max_position_embeddings": MAX_LENGTH,
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
        "problem_type": (
            "multi_label_classification" if multi_label else "single_label_classification"
        ),
        "pad_token_id": 0,
        # Wider than the usual 0.02 so random logits differ visibly between texts.
        "initializer_range": 0.2,
    }
    torch.manual_seed(seed)
    if arch == "distilbert":
        config = DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, **common)
        model = DistilBertForSequenceClassification(config)
    else:
        config = BertConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            type_vocab_size=2,
            **common,
        )
        model = BertForSequenceClassification(config)
    return model.eval()


def _export_onnx(model_dir: Path) -> None:
    """Export with optimum next to the weights, so optimum's ORT classes load it as-is."""
    from optimum.exporters.onnx import main_export

    with warnings.catch_warnings():  # tracer and deprecation chatter from torch/transformers
        warnings.simplefilter("ignore")
        main_export(
            model_name_or_path=str(model_dir),
            output=model_dir,
            task="text-classification",
            opset=ONNX_OPSET,
            no_post_process=True,
            do_validation=False,
            local_files_only=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.tiny", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--arch", choices=("distilbert", "bert"), default="distilbert")
    parser.add_argument("--multi-label", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build_tiny_model(
        args.out_dir, arch=args.arch, multi_label=args.multi_label, seed=args.seed
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
