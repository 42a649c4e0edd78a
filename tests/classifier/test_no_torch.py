"""The bot's runtime must not need torch: importing and using `classifier` never loads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

HEAVY = ("torch", "transformers", "optimum", "onnx", "training", "bot")


def test_classifier_never_imports_torch_or_transformers(tiny_model_dir: Path) -> None:
    code = f"""
import sys
import classifier
from classifier import Classifier, Prediction, MicroBatcher, normalize, ModelLoadError
import classifier.cli
model = Classifier.load({str(tiny_model_dir)!r})
assert model.predict(["anyone know why pip hangs?"])[0].label in model.labels
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))
assert not loaded, loaded
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
