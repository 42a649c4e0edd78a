"""Turn the measured results into the Markdown tables (stdout) and check issue 6's targets."""

from __future__ import annotations

from typing import Any

RUNNERS = ("torch", "ort_fp32", "project")
RUNNER_TITLES = {
    "torch": "PyTorch eager fp32, batch 1",
    "ort_fp32": "onnxruntime fp32 (plain export), batch 1",
    "project": "project: int8 + Classifier + MicroBatcher",
}
# Which tokenizer call each runner makes per message (see latency.tokenizer_cost).
TOKENIZER_KEY = {
    "torch": "transformers_single_us",
    "ort_fp32": "tokenizers_single_us",
    "project": "tokenizers_batch64_us",
}


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def derive(variant: dict[str, Any], ceiling: dict[str, Any]) -> None:
    """Add ratio vs PyTorch b1 and fraction of the int8 ceiling to each measured row."""
    rows = variant["rows"]
    base = (rows.get("torch") or {}).get("throughput", {}).get("msgs_per_s")
    shape = variant["shape"]
    point = ceiling.get("shapes", {}).get(f"{shape['hidden']}x{shape['ffn']}", {})
    ceiling_gops = point.get("ceiling_gops")
    variant["ceiling_gops"] = ceiling_gops
    for row in rows.values():
        if not row or "throughput" not in row:
            continue
        rate = row["throughput"]["msgs_per_s"]
        row["x_pytorch_b1"] = round(rate / base, 2) if base else None
        useful_gops = rate * (row.get("ops_per_msg") or variant["ops_per_msg"]) / 1e9
        row["useful_gops"] = round(useful_gops, 3)
        row["ceiling_fraction"] = useful_gops / ceiling_gops if ceiling_gops else None


def _target(name: str, value: float | None, threshold: float, *, at_most: bool = False,
            unit: str = "", note: str = "") -> dict[str, Any]:
    if value is None:
        return {"target": name, "value": None, "threshold": threshold, "pass": None,
                "detail": "not measured" + (f" ({note})" if note else "")}
    passed = value <= threshold if at_most else value >= threshold
    if passed:
        detail = "met"
    elif at_most:
        detail = f"missed: {value:,.4g}{unit} is {value / threshold:.2f}x the limit"
    else:
        detail = f"missed: {value:,.4g}{unit} is {value / threshold:.0%} of the target"
    if note:
        detail += f" ({note})"
    return {"target": name, "value": value, "threshold": threshold, "pass": passed, "detail": detail}


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    by_key = {v["key"]: v for v in results["variants"]}
    targets = []
    default = by_key.get("default")
    note = "stand-in for models/default" if default and default.get("standin") else ""
    if default:
        project = default["rows"].get("project") or {}
        targets.append(_target("default int8 + batcher >= 10x PyTorch eager fp32 b1",
                               project.get("x_pytorch_b1"), 10, unit="x", note=note))
        frac = project.get("ceiling_fraction")
        targets.append(_target("default int8 + batcher >= 60% of the int8 ceiling",
                               None if frac is None else round(frac * 100, 1), 60, unit="%",
                               note=note))
    distil = by_key.get("distilbert-base")
    if distil:
        project = distil["rows"].get("project") or {}
        targets.append(_target("DistilBERT-base int8 >= 5x PyTorch eager fp32 b1",
                               project.get("x_pytorch_b1"), 5, unit="x"))
    e2e = results.get("e2e") or {}
    if "full_load" in e2e and default:
        own = (default["rows"].get("project") or {}).get("throughput", {}).get("msgs_per_s")
        share = e2e["full_load"]["msgs_per_s"] / own * 100 if own else None
        targets.append(_target("e2e msgs/s >= 80% of the classifier's own",
                               None if share is None else round(share, 1), 80, unit="%", note=note))
        targets.append(_target("e2e p99 receipt->stored <= 50 ms at 50% load",
                               e2e["half_load"]["receipt_to_stored"]["p99_ms"], 50, at_most=True,
                               unit=" ms", note=note))
        targets.append(_target("e2e event-loop lag p99 <= 10 ms at full load",
                               e2e["full_load"]["loop_lag"]["p99_ms"], 10, at_most=True,
                               unit=" ms", note=note))
        targets.append(_target("bot peak RSS <= 300 MB with the default model",
                               e2e["peak_rss_mb"], 300, at_most=True, unit=" MB", note=note))
    return targets


def _targets_for(variant: dict[str, Any], runner: str, targets: list[dict[str, Any]]) -> str:
    if runner != "project":
        return ""
    wanted = {
        "default": ("default int8 + batcher >= 10x", "default int8 + batcher >= 60%"),
        "distilbert-base": ("DistilBERT-base int8 >= 5x",),
    }.get(variant["key"], ())
    marks = []
    for target in targets:
        if target["target"].startswith(wanted):
            short = ">=10x" if "10x" in target["target"] else ">=5x" if "5x" in target["target"] else ">=60% ceil"
            verdict = "n/a" if target["pass"] is None else "PASS" if target["pass"] else "MISS"
            marks.append(f"{short} {verdict}")
    return ", ".join(marks)


def markdown(results: dict[str, Any]) -> str:
    targets = results["targets"]
    lines = [
        "| model | runtime | msgs/s | x PyTorch b1 | p50 ms @50% | p99 ms @50% | peak RSS MB "
        "| tokenizer µs/msg | % int8 ceiling | targets |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for variant in results["variants"]:
        for runner in RUNNERS:
            row = variant["rows"].get(runner)
            if not row:
                continue
            if "error" in row:
                lines.append(f"| {variant['title']} | {RUNNER_TITLES[runner]} | error: "
                             f"{row['error']} | | | | | | | |")
                continue
            tok = row.get("tokenizer", {}).get(TOKENIZER_KEY[runner])
            frac = row.get("ceiling_fraction")
            lines.append(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                    variant["title"],
                    RUNNER_TITLES[runner],
                    _fmt(row["throughput"]["msgs_per_s"]),
                    _fmt(row.get("x_pytorch_b1"), 2),
                    _fmt(row["latency"]["p50_ms"]),
                    _fmt(row["latency"]["p99_ms"]),
                    _fmt(row.get("peak_rss_mb"), 0),
                    _fmt(tok),
                    "-" if frac is None else f"{frac * 100:.1f}%",
                    _targets_for(variant, runner, targets),
                )
            )
    e2e = results.get("e2e") or {}
    if "full_load" in e2e:
        full, half = e2e["full_load"], e2e["half_load"]
        lines += [
            "",
            "| end to end (create_bot + simcord + SQLite) | msgs/s | p50 ms @50% | p99 ms @50% "
            "| loop lag p99 ms (full) | loop lag p99 ms (50%) | peak RSS MB | rows stored / sent |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} |".format(
                e2e.get("title", "default model"),
                _fmt(full["msgs_per_s"]),
                _fmt(half["receipt_to_stored"]["p50_ms"]),
                _fmt(half["receipt_to_stored"]["p99_ms"]),
                _fmt(full["loop_lag"]["p99_ms"]),
                _fmt(half["loop_lag"]["p99_ms"]),
                _fmt(e2e["peak_rss_mb"], 0),
                e2e["stored_rows"],
                e2e["messages_sent"],
            ),
        ]
    elif e2e:
        lines += ["", f"end to end: {e2e.get('skipped') or e2e.get('error')}"]
    if targets:
        lines += ["", "| target (issue 6) | result | verdict |", "|---|---:|---|"]
        for t in targets:
            verdict = "n/a" if t["pass"] is None else "PASS" if t["pass"] else "MISS"
            lines.append(f"| {t['target']} | {_fmt(t['value'], 2)} | {verdict}: {t['detail']} |")
    return "\n".join(lines)


def diagnostics_markdown(results: dict[str, Any]) -> str:
    """Ceiling, profile and batch-budget sweep: the 'why' behind the table."""
    lines = []
    machine = results.get("machine", {})
    cpus = machine.get("cpus") or 1
    busy_before, busy_after = machine.get("busy_before"), machine.get("busy_after")
    lines.append(
        f"machine: {machine.get('cpu')}, {cpus} CPUs, {' '.join(machine.get('isa', []))}; "
        f"CPUs busy before/after the run: {busy_before}/{busy_after}; load average "
        f"{(machine.get('loadavg') or ['?'])[0]} -> {(machine.get('loadavg_end') or ['?'])[0]}"
    )
    if max(busy_before or 0, busy_after or 0) > 0.15:
        lines.append(
            "WARNING: other work was running on this machine: absolute numbers and even "
            "ratios are unreliable (batch-1 PyTorch suffers most from oversubscribed cores)."
        )
    ref = (results.get("workload") or {}).get("reference")
    if ref:
        full, seen = ref["full_length_tokens"], ref["model_tokens"]
        lines.append(
            f"workload: {full['n']} messages, tokens p10/p50/p90/p99/max = {full['p10']:.0f}/"
            f"{full['p50']:.0f}/{full['p90']:.0f}/{full['p99']:.0f}/{full['max']:.0f} "
            f"({full['share_over_max_length']:.1%} over max_length {ref['max_length']}, "
            f"truncated); the model sees mean {seen['mean']:.1f} tokens/msg"
        )
    ceiling = results.get("ceiling") or {}
    if ceiling.get("shapes"):
        lines.append(
            f"int8 ceiling ({ceiling['sessions']} sessions x {ceiling['threads']} thread, "
            "one encoder layer's six matmuls, best over token counts):"
        )
        for shape, point in ceiling["shapes"].items():
            lines.append(
                f"  hidden x ffn {shape}: MatMulInteger {point['ceiling_gops']:,.0f} GOPS; "
                f"DynamicQuantizeMatMul {_fmt(point['dynamic_quant_best_gops'], 0)} GOPS"
            )
    for variant in results["variants"]:
        project = variant["rows"].get("project") or {}
        if "throughput" not in project:
            continue
        t = project["throughput"]
        prof = t.get("profile") or {}
        lines.append(
            f"{variant['title']}: {variant['ops_per_msg'] / 1e9:.3f} GOP useful/msg; project path "
            f"{project.get('useful_gops')} GOPS useful; batches of {t['mean_batch_messages']} msgs, "
            f"padding {t['padding_ratio']:.1%}, worker time: ORT {prof.get('ort_share', 0):.0%}, "
            f"tokenizer {prof.get('tokenize_share', 0):.0%}, other Python in predict "
            f"{prof.get('other_in_predict_share', 0):.0%}, idle/outside predict "
            f"{prof.get('outside_predict_share', 0):.0%}; CPU cores used {t['cpu_cores_used']}"
        )
        ops = project.get("op_profile")
        if ops:
            top = ", ".join(f"{k} {v:.0%}" for k, v in list(ops["op_share"].items())[:6])
            lines.append(
                f"  ORT op time (runs of <= {ops['budget']} padded tokens, padding "
                f"{ops['padding_ratio']:.1%}): {top}"
            )
        sweep = project.get("budget_sweep")
        if sweep:
            cells = ", ".join(
                f"{p['max_batch_tokens']}: {p['msgs_per_s']:,.0f}/s (pad {p['padding_ratio']:.0%})"
                for p in sweep
            )
            lines.append(f"  Classifier.predict, 1 session, by max_batch_tokens: {cells}")
        tok = project.get("tokenizer", {})
        if tok:
            lines.append(
                f"  per message: normalize {tok.get('normalize_us')} µs, tokenizers "
                f"{tok.get('tokenizers_single_us')} µs one-by-one / "
                f"{tok.get('tokenizers_batch64_us')} µs batched"
            )
        torch_tok = (variant["rows"].get("torch") or {}).get("tokenizer", {})
        if torch_tok.get("transformers_single_us"):
            lines.append(
                f"  transformers fast-tokenizer wrapper: {torch_tok['transformers_single_us']} "
                f"µs/msg vs plain tokenizers {torch_tok.get('tokenizers_single_us')} µs/msg"
            )
    e2e = results.get("e2e") or {}
    if "full_load" in e2e:
        s = e2e["settings"]
        lines.append(
            f"e2e settings: {s['model_sessions']} sessions x {s['model_threads']} thread, "
            f"max_batch_tokens {s['max_batch_tokens']}, max_wait_ms {s['max_wait_ms']}, "
            f"db_batch_size {s['db_batch_size']}, db_flush_interval_ms {s['db_flush_interval_ms']}; "
            f"mean batch {e2e['full_load']['mean_batch_messages']} msgs at full load, "
            f"{e2e['half_load']['mean_batch_messages']} at 50%"
        )
        cpu = e2e["full_load"].get("cpu")
        if cpu:
            lines.append(
                f"e2e CPU at full load: process {cpu['process_cores']} cores, event-loop thread "
                f"{cpu['loop_thread_cores']} cores = {cpu['loop_cpu_us_per_msg']} µs/msg "
                f"({cpu['simulated_gateway_cpu_us_per_msg']} µs simcord + discord.py parsing, "
                f"{cpu['bot_loop_cpu_us_per_msg']} µs bot handlers + SQLite writer + dispatch); "
                f"classifier predict {cpu['predict_us_per_msg']} µs/msg of worker wall time"
            )
    return "\n".join(lines)
