"""End-to-end benchmark: one large raw object through the local run, at a stack's declared settings.

Run: ``.venv/bin/python benchmarks/end_to_end.py [--size-mb 1024] [--stack dev|prod]``. It writes one
JSON Lines object of about ``--size-mb`` MB of event-sized clickstream records (``benchmarks/ingestion.py``'s
``generate(rich=True)``: a pool of 20 000 distinct records, repeated), then runs it through the local run
(``python -m devtools run``'s pipeline: the stack as the program declares it, on moto with IAM enforced,
the real handlers in Lambda-like processes, a SQLite database) with CPU scaling on: each invocation's CPU
time counts at the CPU share of its declared memory (``devtools/localrun/cpu.py``), and an invocation whose
scaled time passes its timeout fails as on Lambda (``Sandbox.Timedout``, retries, failure queue).

Prints, per stage: invocations (and how many timed out), the wall time and CPU time here, the scaled Lambda
time (all summed over the stage's invocations) and the longest invocation's, the parts (``records/``
objects per raw object, ``aggregates/`` documents, reports), the peak resident memory of the stage's
containers (their ``VmHWM``), and whether every invocation fitted its timeout; then the runner's own
peak memory (moto holds every object in this process). On a shared machine the wall time mostly
measures the neighbours: the scaled time comes from CPU time. Figures go to docs/benchmarks.md; this is
not run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingestion import generate  # noqa: E402  (benchmarks/ is not a package: its scripts share by path)

from devtools.localrun.command import WORK_ROOT, prepare  # noqa: E402
from devtools.localrun.results import RunResult, StageStats  # noqa: E402
from handlers import contract  # noqa: E402
from handlers.contract import STAGES, Stage  # noqa: E402

MB = 1_000_000
# What each stage writes, counted per raw object: ingestion's records/ parts, processing's aggregates/
# documents (one per part) and analytics' reports (one per raw object).
OUTPUTS = {
    Stage.INGESTION: contract.RECORDS_PREFIX,
    Stage.PROCESSING: contract.AGGREGATES_PREFIX,
    Stage.ANALYTICS: contract.REPORTS_PREFIX,
}


def peak_mb() -> float:
    """This process's resident high-water mark (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def outputs(result: RunResult, stage: str) -> int:
    """How many objects ``stage`` left under its output prefix (quarantine excluded)."""
    prefix = OUTPUTS[Stage(stage)]
    return sum(1 for keys in result.objects.values() for key in keys if key.startswith(prefix))


def row(stage: str, stats: StageStats, parts: int, raw_objects: int) -> dict[str, Any]:
    fits = not stats.timed_out and (
        stats.longest_lambda_seconds is None or stats.longest_lambda_seconds <= stats.timeout_seconds
    )
    return {
        "stage": stage,
        "memory_mb": stats.memory_mb,
        "timeout_s": stats.timeout_seconds,
        "cpu_factor": round(stats.cpu_factor, 2) if stats.cpu_factor else None,
        "invocations": stats.invocations,
        "timed_out": stats.timed_out,
        "errors": stats.errors,
        "wall_s": round(stats.wall_seconds, 1),
        "cpu_s": round(stats.cpu_seconds, 1),
        "lambda_s": None if stats.lambda_seconds is None else round(stats.lambda_seconds, 1),
        "longest_lambda_s": None
        if stats.longest_lambda_seconds is None
        else round(stats.longest_lambda_seconds, 1),
        "outputs_per_raw_object": parts / raw_objects if raw_objects else 0,
        "peak_mb": stats.peak_memory_mb,
        "fits_timeout": fits,
    }


def render(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0])
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in header]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(r[h]).ljust(w) for h, w in zip(header, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=float, default=1024, help="raw object size in MB (default 1024)")
    parser.add_argument(
        "--stack", choices=("dev", "prod"), default="dev", help="declared settings (default dev)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    parser.add_argument("--verbose", action="store_true", help="print the local run's progress lines")
    args = parser.parse_args(argv)

    def echo(line: str) -> None:
        if args.verbose:
            print(line, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="end-to-end-") as tmp:
        raw = Path(tmp) / "clickstream.jsonl"
        started = time.perf_counter()
        records = generate(raw, int(args.size_mb * MB), rich=True)
        generated = time.perf_counter() - started
        print(
            f"input: {raw.stat().st_size / MB:.1f} MB, {records} records, generated in {generated:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        prepared = prepare(args.stack, work_root=WORK_ROOT / "benchmark", echo=echo)
        started = time.perf_counter()
        # Hours, not the default five minutes: a gigabyte of CPU-bound stages on shared cores.
        result = prepared.pipeline(cpu_scaling=True, idle_timeout=6 * 3600.0, echo=echo).run([raw])
        elapsed = time.perf_counter() - started
    raw_objects = sum(1 for upload in result.uploads if upload.triggered)
    rows = [row(stage, result.stages[stage], outputs(result, stage), raw_objects) for stage in STAGES]
    summary = {
        "stack": args.stack,
        "size_mb": round(sum(u.size for u in result.uploads) / MB, 1),
        "records": records,
        "elapsed_s": round(elapsed, 1),
        "runner_peak_mb": round(peak_mb()),
        "ok": result.ok,
        "failures": [
            f"{f.stage} {f.key}: {f.error_type} after {f.attempts} attempt(s)" for f in result.failures
        ],
        "machine": f"{platform.machine()}, CPython {platform.python_version()} (runner), handlers on "
        f"{result.interpreter['runtime']}",
        "stages": rows,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0 if result.ok else 1
    print(
        f"stack {args.stack}: {summary['size_mb']} MB, {records} records, one raw object; "
        f"{elapsed:.0f} s from provisioning to idle; runner peak {summary['runner_peak_mb']} MB; "
        f"{'OK' if result.ok else 'FAILED'}"
    )
    print(render(rows))
    for failure in summary["failures"]:
        print(f"failed: {failure}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
