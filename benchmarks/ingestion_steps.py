"""Where the ingestion core's time goes, step by step, next to the raw parse it is compared with.

Run: ``.venv/bin/python benchmarks/ingestion_steps.py [--records small|rich] [--size-mb 3] [--instructions]``.

Each row rebuilds the core's batch work on the same JSON Lines input with one more step than the row
before, calling the functions the ingestion core (``handlers.ingestion_core``) itself calls:

* ``split``       lines a read chunk at a time (``iter_line_blocks``), joined into batches of 256;
* ``+decode``     msgspec ``decode_lines`` per batch;
* ``+validate``   one jsonschema-rs call per batch (``RecordChecker._all_valid``);
* ``+timestamps`` ``normalise_timestamp`` per record, written back into the records;
* ``+encode``     msgspec ``encode_lines`` per batch;
* ``+duplicates`` the quote counts that rule out duplicate keys (``no_duplicate_keys``);
* ``core``        the real ``handlers.ingestion_core.ingest`` into a sink that discards its lines;
* ``core@baseline`` with ``--baseline PATH``, the ``ingest`` of another handlers/ingest.py (an earlier
                  commit's), so that a change and what it replaces are timed in the same rounds;
* ``parse``       parse each line with msgspec and discard it: the raw parse rate of benchmarks/ingestion.py.

By default each figure is CPU microseconds per record (best of ``--repeats``). With ``--instructions``
each row runs once under valgrind's callgrind instead and the figure is instructions per record, less
a run that only loads the data and warms the timestamp caches: a count that neighbours on a shared
machine do not disturb, unlike CPU time (docs/benchmarks.md). Not run by the test suite.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from functools import partial
from itertools import repeat
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

STEPS = ["split", "+decode", "+validate", "+timestamps", "+encode", "+duplicates"]


def workloads(data: bytes, rows: list[str], baseline: Path | None = None) -> dict[str, Callable[[], None]]:
    """The work of each of ``rows`` over ``data``, ready to run (one checker, warmed once)."""
    import msgspec
    from ingestion import Discard, load_core  # benchmarks/ingestion.py's sink and module loader

    from handlers.config import default_record_schema

    core = load_core(None)

    checker = core.RecordChecker(default_record_schema())
    decode = msgspec.json.Decoder().decode

    def chunks() -> Iterator[list[bytes]]:
        # One read chunk's lines at a time, as the core streams them: holding every line at once would
        # make the steps touch colder memory than the core does.
        for lines, _ in core.iter_line_blocks(io.BytesIO(data).read, 1 << 20):
            yield lines  # type: ignore[misc]

    def steps(depth: int) -> None:
        for lines in chunks():
            for start in range(0, len(lines), core.BATCH_UNITS):
                joined = b"\n".join(lines[start : start + core.BATCH_UNITS])
                if depth < 1:
                    continue
                records = core._decode_lines(joined)
                if depth >= 2:
                    checker._all_valid(records)
                if depth >= 3:
                    timestamps = list(map(dict.get, records, repeat("timestamp")))
                    normalised = list(map(core.normalise_timestamp, timestamps))
                    deque(map(dict.__setitem__, records, repeat("timestamp"), normalised), maxlen=0)
                if depth >= 4:
                    encoded = core._encode_lines(records)
                if depth >= 5:  # the cost of the counts; their verdict is not needed here
                    core.no_duplicate_keys(joined, records, encoded, 0)

    def whole_core() -> None:
        core.ingest(io.BytesIO(data).read, core.InputFormat(False, False), checker, 1 << 20, {}, Discard())

    def baseline_core() -> None:
        old.ingest(io.BytesIO(data).read, old.InputFormat(False, False), old_checker, 1 << 20, {}, Discard())

    def parse() -> None:
        for lines in chunks():
            for line in lines:
                decode(line)

    old = load_core(baseline) if baseline is not None else core
    old_checker = old.RecordChecker(default_record_schema())
    # The timestamp caches learn from the first values they see; every row starts after that.
    whole_core()
    if baseline is not None:
        baseline_core()
    by_row = {"core": whole_core, "core@baseline": baseline_core, "parse": parse, "load": lambda: None}
    by_row |= {step: partial(steps, depth) for depth, step in enumerate(STEPS)}
    return {row: by_row[row] for row in rows}


def cpu_per_record(
    data: bytes, records: int, repeats: int, rows: list[str], baseline: Path | None
) -> dict[str, float]:
    """Best CPU time per record of every row; a round runs each row once, so a busy moment on a
    shared machine slows one round of every row rather than all rounds of one."""
    work = workloads(data, rows, baseline)
    best = dict.fromkeys(rows, float("inf"))
    for _ in range(repeats):
        for row in rows:
            start = time.process_time()
            work[row]()
            best[row] = min(best[row], time.process_time() - start)
    return {row: seconds / records * 1e6 for row, seconds in best.items()}


def instructions(path: Path, row: str, baseline: Path | None) -> int:
    """Instructions executed by a process that loads ``path`` and runs ``row`` once (callgrind)."""
    extra = ["--baseline", str(baseline)] if baseline is not None else []
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--measure",
            row,
            "--input",
            str(path),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"refs:\s+([\d,]+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", choices=["small", "rich"], default="small")
    parser.add_argument("--size-mb", type=float, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind")
    parser.add_argument(
        "--baseline", type=Path, help="an earlier handlers/ingest.py (one module), timed as core@baseline"
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    baseline = args.baseline.resolve() if args.baseline else None
    rows = [*STEPS, "core", *(["core@baseline"] if baseline else []), "parse"]
    if args.measure:  # one row inside valgrind
        workloads(args.input.read_bytes(), [args.measure], baseline)[args.measure]()
        return

    from ingestion import generate  # the record shapes of benchmarks/ingestion.py

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.jsonl"
        records = generate(path, int(args.size_mb * 1e6), rich=args.records == "rich")
        data = path.read_bytes()
        if args.instructions:
            if shutil.which("valgrind") is None:
                sys.exit("--instructions needs valgrind (apt-get install valgrind)")
            unit = "instructions/record"
            base = instructions(path, "load", baseline)
            figures = {row: (instructions(path, row, baseline) - base) / records for row in rows}
        else:
            unit = "CPU µs/record"
            figures = cpu_per_record(data, records, args.repeats, rows, baseline)
    parse = figures["parse"]
    print(f"{records} {args.records} records, {len(data) / 1e6:.1f} MB; {unit}; 'parse' = parse and discard")
    print(f"| step | {unit} | this step | this step / parse |\n|---|---|---|---|")
    before = 0.0
    for row in STEPS:
        step = figures[row] - before
        print(f"| {row} | {figures[row]:,.2f} | {step:,.2f} | {step / parse:.2f} |")
        before = figures[row]
    for row in rows[len(STEPS) :]:
        print(f"| {row} | {figures[row]:,.2f} | | {figures[row] / parse:.2f} |")
    print(f"core / parse rate: {parse / figures['core']:.2f} (target >= 0.33)")
    if baseline is not None:
        print(f"core@baseline / parse rate: {parse / figures['core@baseline']:.2f}")
    print(f"the steps above account for {before / figures['core']:.0%} of the core")


if __name__ == "__main__":
    main()
