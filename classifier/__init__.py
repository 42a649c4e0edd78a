"""Pure inference library: ONNX model directories in, predictions out. No Discord, no torch.

Public API (contract: docs/architecture.md): `Classifier.load(dir).predict(texts)` for
synchronous use, `MicroBatcher` for many concurrent async callers, `normalize` for the
"discord-v1" preprocessing that training and inference share, `ModelLoadError` for bad
model directories.
"""

from classifier.batcher import BatcherStats, MicroBatcher, QueueFull
from classifier.model import Classifier, Prediction
from classifier.model_dir import ModelLoadError
from classifier.preprocess import MARKERS, PREPROCESSING, normalize

__all__ = [
    "MARKERS",
    "PREPROCESSING",
    "BatcherStats",
    "Classifier",
    "MicroBatcher",
    "ModelLoadError",
    "Prediction",
    "QueueFull",
    "normalize",
]
