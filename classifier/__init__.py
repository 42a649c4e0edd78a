"""Pure inference library: ONNX model directories in, predictions out. No Discord, no torch."""
