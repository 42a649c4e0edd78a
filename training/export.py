"""PyTorch -> ONNX (fp32) -> ORT-fused fp32 -> dynamic int8.

Measured facts this follows (see docs): ONNX Runtime's transformer fusion (Attention,
EmbedLayerNormalization, SkipLayerNormalization, BiasGelu) only recognises the graph
that ``torch.onnx.export(dynamo=False)`` produces from *eager* attention, so the model is
loaded with ``attn_implementation="eager"`` and exported with the TorchScript exporter.
Quantising a fused graph needs ``DefaultTensorType=FLOAT`` (the contrib ops carry no
type info the quantiser can infer).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Fused ops we expect from a BERT-style encoder after optimisation.
FUSED_OPS = ("Attention", "MultiHeadAttention", "SkipLayerNormalization", "EmbedLayerNormalization")


class ExportError(RuntimeError):
    """The ONNX export, optimisation or quantisation failed."""


@dataclass
class ExportedModels:
    """Paths of the fp32 graphs and what the optimiser fused."""

    raw_fp32: Path
    fp32: Path  # optimised (fused) fp32
    fused_ops: dict[str, int]
    input_names: list[str]


def logits_module(model: Any, input_names: list[str]) -> Any:
    """Wrap a HF classifier (positional inputs) so the traced graph returns only ``logits``."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(input_names, inputs, strict=True))).logits

    # eval() on the wrapper: the exporter restores the *wrapper's* mode afterwards, and a
    # fresh Module is in training mode (dropout on), which would leak into `model`.
    return LogitsOnly().eval()


@contextlib.contextmanager
def _quiet_root_logger() -> Any:
    """quantize_dynamic logs advice through the root logger; keep the console readable."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def export_onnx(model: Any, tokenizer: Any, path: Path, input_names: list[str], opset: int) -> None:
    """TorchScript export with dynamic batch and sequence axes."""
    import torch

    model.eval()
    sample = tokenizer(
        ["hello there", "a slightly longer sample message"], padding=True, return_tensors="pt"
    )
    args = tuple(sample[name] for name in input_names)
    axes = {name: {0: "batch_size", 1: "sequence_length"} for name in input_names}
    axes["logits"] = {0: "batch_size"}
    wrapper = logits_module(model, input_names)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TorchScript-exporter deprecation notices
            torch.onnx.export(
                wrapper,
                args,
                str(path),
                input_names=input_names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as error:  # the exporter raises many unrelated types
        raise ExportError(f"torch.onnx.export failed: {error}") from error
    finally:
        model.eval()


def optimize_onnx(source: Path, target: Path, config: Any) -> dict[str, int]:
    """ORT transformer fusion for BERT-family encoders; returns fused-op counts."""
    from onnxruntime.transformers.optimizer import optimize_model

    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", 0)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", 0)
    # The optimiser logs every pattern it tried; keep the console readable.
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        optimized = optimize_model(
            str(source),
            model_type="bert",
            num_heads=int(heads),
            hidden_size=int(hidden),
            opt_level=0,
            use_gpu=False,
        )
        stats = optimized.get_fused_operator_statistics()
        optimized.save_model_to_file(str(target), use_external_data_format=False)
    return {op: int(stats.get(op, 0)) for op in FUSED_OPS}


# What dynamic int8 quantises, from most to least. Quantisation noise adds up through the
# layers; when quantising everything flips too many test predictions, verification tries the
# next scope (measured on MiniLM-L6: all 98.6% agreement, FFN up-projections kept fp32 99.2%,
# MatMul only 99.5%, fused Attention only 99.7%).
INT8_SCOPES: tuple[str, ...] = ("all", "keep-ffn-up-fp32", "matmul-only", "attention-only")
_FFN_UP_MARKERS = ("/intermediate/", "/ffn/lin1/")  # BERT/MiniLM, DistilBERT node names


def _scope_options(source: Path, scope: str) -> dict[str, Any]:
    import onnx

    if scope == "all":
        return {}
    if scope == "keep-ffn-up-fp32":
        graph = onnx.load(str(source), load_external_data=False).graph
        names = [
            node.name for node in graph.node
            if node.op_type == "MatMul" and any(m in node.name for m in _FFN_UP_MARKERS)
        ]
        return {"nodes_to_exclude": names}
    if scope == "matmul-only":
        return {"op_types_to_quantize": ["MatMul"]}
    if scope == "attention-only":
        return {"op_types_to_quantize": ["Attention"]}
    raise ValueError(f"unknown int8 scope {scope!r}; expected one of {INT8_SCOPES}")


def quantize_int8(
    source: Path, target: Path, *, per_channel: bool, reduce_range: bool, scope: str = "all"
) -> None:
    """Dynamic int8 (weights int8, activations quantised at run time) over `scope`."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    options = _scope_options(source, scope)
    with _quiet_root_logger():
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            reduce_range=reduce_range,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            **options,
        )


def op_counts(path: Path) -> Counter[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return Counter(node.op_type for node in graph.node)


def export_all(
    model: Any, tokenizer: Any, out_dir: Path, *, opset: int, log: Any = print
) -> ExportedModels:
    """Write the raw and the ORT-fused fp32 graphs into ``out_dir`` (int8: `quantize_int8`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    input_names = [
        name
        for name in ("input_ids", "attention_mask", "token_type_ids")
        if name in tokenizer.model_input_names
    ]
    raw = out_dir / "model_raw_fp32.onnx"
    fused = out_dir / "model_fp32.onnx"
    export_onnx(model, tokenizer, raw, input_names, opset)
    try:
        fused_ops = optimize_onnx(raw, fused, model.config)
    except Exception as error:
        raise ExportError(f"ONNX Runtime transformer optimisation failed: {error}") from error
    log("ORT fusion: " + ", ".join(f"{op}={n}" for op, n in fused_ops.items()))
    if not (fused_ops["Attention"] or fused_ops["MultiHeadAttention"]):
        log("warning: no attention fusion happened; the model will run unfused (slower)")
    return ExportedModels(raw_fp32=raw, fp32=fused, fused_ops=fused_ops, input_names=input_names)


def int8_settings(per_channel: bool, reduce_range: bool, fallback: bool) -> list[tuple[bool, bool]]:
    """(per_channel, reduce_range) to try in order: the configured pair, then the others.

    reduce_range (7-bit weights) avoids the int16 saturation of AVX2/AVX-512 kernels
    without VNNI, but costs precision on CPUs with VNNI; per-channel scales are usually
    more accurate. Which wins depends on the model and the CPU, so verification decides.
    """
    first = (per_channel, reduce_range)
    if not fallback:
        return [first]
    others = [
        (per_channel, not reduce_range),
        (not per_channel, reduce_range),
        (not per_channel, not reduce_range),
    ]
    return [first, *others]
