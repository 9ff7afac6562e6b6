"""The benchmark scripts still run against the current core (they call its functions by name).

Their figures are not checked: a benchmark prints measurements (docs/benchmarks.md), it is not a timed
test. What is checked is that every row is measured and the summary lines are printed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from handlers.contract import STAGES

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_ingestion_benchmark_measures_every_contender() -> None:
    # GIVEN a tiny input WHEN the benchmark runs once
    out = run("ingestion.py", "--size-mb", "0.5", "--small-mb", "0.2", "--repeats", "1", "--gzip-levels", "1")
    # THEN each contender has a row with a positive rate, and the three target lines are printed
    rates = dict(
        re.findall(
            r"^\| (core|core\+gzip1|naive|parse:msgspec|core@small) \|(?:[^|]+\|){4} ([\d.]+) \|",
            out,
            re.M,
        )
    )
    assert set(rates) == {"core", "core+gzip1", "naive", "parse:msgspec", "core@small"}
    assert all(float(rate) > 0 for rate in rates.values())
    assert re.search(r"core / naive baseline: [\d.]+x", out)
    assert re.search(r"core / fastest parse-and-discard \(parse:(msgspec|orjson|json)\): [\d.]+", out)
    assert re.search(r"core peak RSS growth: [\d.]+ MB at 0.2 MB input, [\d.]+ MB at 0.5 MB input", out)


def test_the_handler_benchmark_measures_the_handler_and_the_naive_handlers_on_the_same_records() -> None:
    # GIVEN a tiny input with a bad record every 20 lines WHEN the handler benchmark runs once
    out = run("ingestion_handler.py", "--size-mb", "0.05", "--repeats", "1", "--bad-every", "20")
    # THEN each contender has a row with a positive rate, and all wrote the same valid and quarantined lines
    rows = re.findall(
        r"^\| (handler|naive|naive:rs) \| [\d.]+ \| (\d+) \| (\d+) \|(?:[^|]+\|){2} ([\d.]+) \|", out, re.M
    )
    assert [kind for kind, *_ in rows] == ["handler", "naive", "naive:rs"]
    assert len({(valid, quarantined) for _, valid, quarantined, _ in rows}) == 1
    assert int(rows[0][2]) > 0
    assert all(float(rate) > 0 for *_, rate in rows)
    # AND the ratios are printed
    for naive in ("naive", "naive:rs"):
        ratio = re.search(rf"^handler / {naive} throughput: ([\d.]+)x", out, re.M)
        assert ratio is not None
        assert float(ratio.group(1)) > 0


def test_the_steps_benchmark_measures_every_step() -> None:
    # GIVEN a tiny input WHEN the step-by-step breakdown runs once
    out = run("ingestion_steps.py", "--size-mb", "0.2", "--repeats", "1")
    # THEN every step, the whole core and the raw parse have a figure
    rows = re.findall(r"^\| (\S+) \| ([\d,.]+) \|", out, re.M)
    assert [name for name, _ in rows] == [
        "split",
        "+decode",
        "+validate",
        "+timestamps",
        "+encode",
        "+duplicates",
        "core",
        "parse",
    ]
    assert all(float(value.replace(",", "")) > 0 for _, value in rows)
    assert re.search(r"core / parse rate: [\d.]+", out)


@pytest.mark.postgres
def test_the_analytics_benchmark_measures_every_load() -> None:
    import os

    from handler_support import must_have

    if not os.environ.get("TEST_DATABASE_URL"):
        must_have("TEST_DATABASE_URL (run under scripts/with-throwaway-postgres)")
    # GIVEN a few small documents WHEN the benchmark runs once against the throwaway server
    out = run("analytics.py", "--documents", "3", "--groups", "100", "--repeats", "1")
    # THEN each load has a row with a positive rate, and the ratios are printed
    rates = dict(re.findall(r"^\| (old|new|new, replacing|COPY floor) \| [\d.]+ \| ([\d,]+) \|$", out, re.M))
    assert set(rates) == {"old", "new", "new, replacing", "COPY floor"}
    assert all(float(rate.replace(",", "")) > 0 for rate in rates.values())
    assert re.search(r"^new / old: [\d.]+$", out, re.M)
    assert re.search(r"^new, replacing / old: [\d.]+$", out, re.M)
    assert re.search(r"^new / COPY floor: [\d.]+$", out, re.M)
    assert re.search(r"^new, replacing / COPY floor: [\d.]+$", out, re.M)


def test_the_processing_benchmark_measures_every_contender() -> None:
    # GIVEN a tiny input WHEN the benchmark runs once on two shapes
    out = run("processing.py", "--size-mb", "0.3", "--repeats", "1", "--shapes", "int-1d,dec-28d")
    # THEN the old core, the new core and the parse floor each have a positive rate for each shape, and
    # the two ratios are printed per shape
    rates = re.findall(r"^\| (int-1d|dec-28d) \| (old|new|floor) \|(?:[^|]+\|){2} ([\d.]+) \|", out, re.M)
    assert sorted((shape, name) for shape, name, _ in rates) == sorted(
        (shape, name) for shape in ("int-1d", "dec-28d") for name in ("old", "new", "floor")
    )
    assert all(float(rate) > 0 for _, _, rate in rates)
    for shape in ("int-1d", "dec-28d"):
        ratios = rf"^{shape}: new / old [\d.]+x, new / floor [\d.]+ \(best rounds\), [\d.]+ \(median"
        assert re.search(ratios, out, re.M)


def test_the_capacity_benchmark_measures_every_stage_and_prices_every_memory_setting() -> None:
    # GIVEN a tiny input WHEN the capacity benchmark runs once
    out = run("capacity.py", "--size-mb", "0.5", "--repeats", "1", "--gather-parts", "2,3")
    # THEN each stage has a positive rate, a largest object per memory setting, and each memory setting a cost
    rates = dict(re.findall(r"^\| ([a-z .]+?) \| [^|]+ \|(?:[^|]+\|){3} ([\d.]+) \|", out, re.M))
    assert set(rates) == {*STAGES, "ingestion of .jsonl.gz"}
    assert all(float(rate) > 0 for rate in rates.values())
    largest = re.findall(r"^\| ([a-z .]+?) \| (\d+) \|((?: [\d,]+ [MG]B \|){6})$", out, re.M)
    assert {name for name, _, _ in largest} == set(rates)
    # ... twice: at the measured rates and at the planning rates the deadline guard enforces
    assert len(largest) == 2 * len({(name, timeout) for name, timeout, _ in largest})
    # AND the invocation that completes a version gathers the numbers of parts asked for, each way, with a
    # measured cost
    gathers = re.findall(r"^\| (\d+) \| (the same|disjoint) \([\d,]+\) \| [\d.]+ \| ([\d.]+) \|", out, re.M)
    assert sorted((int(parts), how) for parts, how, _ in gathers) == [
        (2, "disjoint"),
        (2, "the same"),
        (3, "disjoint"),
        (3, "the same"),
    ]
    assert all(float(cpu) > 0 for _, _, cpu in gathers)
    costs = re.findall(r"^\| (\d+) MB \| [\d,]+ \| \$([\d.]+) \| \$([\d.]+) \|", out, re.M)
    assert [int(memory) for memory, _, _ in costs] == [128, 512, 1024, 1769, 3008, 10240]
    assert all(float(arm) < float(x86) for _, x86, arm in costs)
