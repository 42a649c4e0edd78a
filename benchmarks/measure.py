"""Shared measuring helpers: percentiles, peak RSS, Poisson arrivals, progress, subprocess jobs.

Every variant is measured in a fresh Python process (`run_job`), so its peak RSS is its
own and no thread pool or allocator state leaks from one variant into the next. A job is
a JSON file in, a JSON file out: `python -m benchmarks.<module> --job IN --out OUT`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent


class JobFailed(RuntimeError):
    """A measuring subprocess exited non-zero or wrote no result."""


def percentile_ms(seconds: Sequence[float], q: float) -> float | None:
    """The q-th percentile of `seconds`, in milliseconds (None for an empty sample)."""
    if len(seconds) == 0:
        return None
    return round(float(np.percentile(np.asarray(seconds, dtype=float), q)) * 1000, 3)


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "n": len(seconds),
        "p50_ms": percentile_ms(seconds, 50),
        "p90_ms": percentile_ms(seconds, 90),
        "p99_ms": percentile_ms(seconds, 99),
        "max_ms": percentile_ms(seconds, 100),
        "mean_ms": round(float(np.mean(seconds)) * 1000, 3) if len(seconds) else None,
    }


def _proc_status_mb(field: str) -> float | None:
    """A memory line of /proc/self/status (e.g. ``VmHWM``) in MiB, or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM, else ru_maxrss), in MiB."""
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def current_rss_mb() -> float:
    current = _proc_status_mb("VmRSS")
    return peak_rss_mb() if current is None else current


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads)."""
    t = os.times()
    return t.user + t.system


def poisson_arrivals(rate: float, duration: float, seed: int, max_count: int) -> np.ndarray:
    """Arrival offsets (seconds from 0) of a Poisson process at `rate`/s for `duration` s."""
    if rate <= 0:
        return np.zeros(0)
    rng = np.random.default_rng(seed)
    expected = int(rate * duration * 1.5) + 16
    gaps = rng.exponential(1.0 / rate, size=expected)
    times = np.cumsum(gaps)
    times = times[times <= duration]
    return times[:max_count]


def cycle(items: Sequence[Any], n: int) -> list[Any]:
    """`n` items taken round-robin from `items` (the workload repeats if it is too short)."""
    if not items:
        return []
    return [items[i % len(items)] for i in range(n)]


class Progress:
    """tqdm when installed (on stderr), else a line every ~10%."""

    def __init__(self, total: int, desc: str, *, enabled: bool = True) -> None:
        self.total, self.desc, self.enabled = max(1, int(total)), desc, enabled
        self.done = 0
        self._next_print = 0.1
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm

                self._bar = tqdm(
                    total=self.total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True
                )
            except ImportError:
                print(f"  {desc} ...", file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and self.done / self.total >= self._next_print:
            print(f"  {self.desc}: {100 * self.done // self.total}%", file=sys.stderr, flush=True)
            self._next_print += 0.1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def run_job(
    module: str, job: dict[str, Any], *, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run `python -m benchmarks.<module> --job ... --out ...` in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="bench-job-") as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        command = [sys.executable, "-m", f"benchmarks.{module}", "--job", str(job_path)]
        command += ["--out", str(out_path)]
        child_env = {**os.environ, **(env or {})}
        child_env.setdefault("TOKENIZERS_PARALLELISM", "true")
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p
        )
        started = time.perf_counter()
        try:
            proc = subprocess.run(command, cwd=REPO_ROOT, env=child_env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise JobFailed(f"benchmarks.{module} timed out after {timeout:.0f}s") from exc
        if proc.returncode != 0 or not out_path.is_file():
            raise JobFailed(f"benchmarks.{module} exited with status {proc.returncode}")
        result = json.loads(out_path.read_text(encoding="utf-8"))
        result["job_wall_s"] = round(time.perf_counter() - started, 2)
        return result


def job_main(argv: Iterable[str] | None, work: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """The `--job IN --out OUT` entry point of a measuring module."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--job", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(list(argv) if argv is not None else None)
    job = json.loads(args.job.read_text(encoding="utf-8"))
    result = work(job)
    result.setdefault("peak_rss_mb", peak_rss_mb())
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


def _cpu_times() -> tuple[int, int] | None:
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle


def cpu_busy_fraction(seconds: float = 1.0) -> float | None:
    """Share of all CPUs busy (anyone's work) over the next `seconds`; None off Linux."""
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(seconds)
    after = _cpu_times()
    if after is None or after[0] == before[0]:
        return None
    total, idle = after[0] - before[0], after[1] - before[1]
    return round(1 - idle / total, 3)


def machine_info() -> dict[str, Any]:
    """CPU model, visible cores, the ISA flags that matter for int8, load, library versions."""
    info: dict[str, Any] = {"cpus": os.cpu_count()}
    try:
        info["affinity_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in text.splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16")
                info["isa"] = [f for f in wanted if f in flags]
                break
    except OSError:
        pass
    try:
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    versions = {}
    for name in ("onnxruntime", "tokenizers", "numpy", "torch", "transformers", "onnx"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = None
    info["versions"] = versions
    info["python"] = sys.version.split()[0]
    return info
