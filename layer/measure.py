"""Measure the layer: size per runtime and architecture, and the handlers' heavy imports with and
without precompiled bytecode. Prints Markdown tables (the figures in docs/layer.md come from here).

    python -m layer.measure [--runs 9] [--cache-dir .build/layers]

Import time is measured the way Lambda pays it on a cold start: a fresh interpreter, the layer on the
path, the standard library beside it, nothing else, and ``-B`` so no bytecode gets written (Lambda's
``/opt`` is read-only, so a layer without .pyc recompiles on every cold start).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from layer.build import DEFAULT_CACHE_DIR, LayerSpec, build_layer, find_interpreter, unzipped_size

RUNTIMES = ("python3.12", "python3.13")
ARCHITECTURES = ("x86_64", "arm64")

HEAVY_IMPORTS = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
started = time.perf_counter()
import psycopg2, psycopg2._psycopg, psycopg2.extras
import sqlalchemy
from sqlalchemy.dialects.postgresql import insert, psycopg2 as dialect
print(time.perf_counter() - started)
"""


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _import_seconds(python: str, site: Path, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        result = subprocess.run(
            [python, "-I", "-S", "-B", "-c", HEAVY_IMPORTS, str(site)],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": os.environ.get("PATH", "")},
        )
        samples.append(float(result.stdout))
    return samples


def _sizes(cache_dir: Path) -> None:
    print("| runtime | architecture | boto3 | zipped | unzipped | files |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    combos = [(runtime, arch, False) for runtime in RUNTIMES for arch in ARCHITECTURES]
    combos.append(("python3.13", "x86_64", True))
    for runtime, arch, boto3 in combos:
        archive = build_layer(
            LayerSpec(runtime=runtime, architecture=arch, include_boto3=boto3), cache_dir=cache_dir
        )
        with zipfile.ZipFile(archive) as zf:
            files = len(zf.infolist())
        boto3_label = "in layer" if boto3 else "runtime's"
        print(
            f"| {runtime} | {arch} | {boto3_label} | {_mb(archive.stat().st_size)} | "
            f"{_mb(unzipped_size(archive))} | {files} |"
        )


def _import_times(cache_dir: Path, runs: int) -> None:
    print("\n| runtime | bytecode | median | min | max | runs |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for runtime in RUNTIMES:
        found = find_interpreter(runtime.removeprefix("python"))
        if found is None:
            print(f"| {runtime} | (no {runtime} interpreter here: not measured) | | | | |")
            continue
        for compiled in (True, False):
            spec = LayerSpec(runtime=runtime, architecture="x86_64", compile_bytecode=compiled)
            archive = build_layer(spec, cache_dir=cache_dir)
            with tempfile.TemporaryDirectory() as tmp:
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(tmp)
                samples = _import_seconds(found[0], Path(tmp) / "python", runs)
            label = "precompiled (.pyc in layer)" if compiled else "none (compiled at import)"
            print(
                f"| {runtime} ({found[1]}) | {label} | {statistics.median(samples):.3f} s | "
                f"{min(samples):.3f} s | {max(samples):.3f} s | {runs} |"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layer.measure", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per import measurement")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    args = parser.parse_args(argv)
    print(
        f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs), "
        f"host python {sys.version.split()[0]}\n"
    )
    _sizes(args.cache_dir)
    _import_times(args.cache_dir, args.runs)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
