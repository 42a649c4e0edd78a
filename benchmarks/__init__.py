"""Benchmark suite for the classifier and the bot (issue 6).

`python -m benchmarks [--model models/default] [--quick] [--out benchmarks/results/latest.json]`
runs everything in one go so the ratios between variants come from one machine state:

- `workload`  - the Discord-like message-length mix (fixed seeds) and texts of those lengths
- `variants`  - the model variants (DistilBERT-base shape, the default model) and their files
- `measure`   - shared helpers: percentiles, peak RSS, Poisson arrivals, progress, subprocesses
- `latency`   - per-variant throughput, latency at 50% load, tokenizer cost (fresh subprocess)
- `ceiling`   - this CPU's int8 MatMul throughput through onnxruntime, useful ops per message
- `e2e`       - the bot from `create_bot`, driven through simcord into SQLite
- `report`    - the Markdown table, the targets of issue 6 and the JSON document

See benchmarks/README.md for the workload and the method.
"""
