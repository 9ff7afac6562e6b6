"""Processing benchmark: the processing core against the core it replaced and against the parse floor.

Run: ``.venv/bin/python benchmarks/processing.py [--size-mb 20] [--repeats 5]``. It builds ``records/``
objects in memory as the ingestion stage writes them (compact JSON Lines, normalised timestamps, gzip
level 1), from a pool of distinct random records written repeatedly, in four shapes: integer-valued or
decimal-valued metrics (``"value":4821`` or ``"value":482.125``), with timestamps over one day or over
four weeks (1h windows: about 400 or about 10 000 groups). For each shape it measures, in this one
process, the CPU time of:

* ``old``   — the processing core of commit 4350ada (``aggregate_stream`` as it was, floats and all),
              loaded from git into a temporary module;
* ``new``   — ``handlers.aggregation.aggregate_stream``;
* ``floor`` — gunzip (the same ``payload_reader``, 1 MiB reads) and msgspec ``Decoder().decode_lines``
              on each read's complete lines, the result discarded: no processing can read the records
              faster than it can decompress and parse them.

Throughput is MB of records (decompressed JSON Lines) per CPU second (``time.process_time``: on a
shared machine the wall clock mostly measures the neighbours), best of ``--repeats`` rounds, a round
running every measurement once, so that a busy moment touches all of them alike. Prints a table and,
per shape, the ratios new / old and new / floor (of the best rounds, and the median of each round's own
new / floor). Figures go to docs/benchmarks.md; this is not run by
the test suite except once, tiny, to check that it still runs.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import platform
import random
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OLD_COMMIT = "4350ada"
DIMENSIONS, METRICS, WINDOW_SECONDS = ("type", "source"), ("value",), 3600
SHAPES = {  # name: (decimal values, days the timestamps span)
    "int-1d": (False, 1),
    "dec-1d": (True, 1),
    "int-28d": (False, 28),
    "dec-28d": (True, 28),
}


def records(size_bytes: int, decimal: bool, days: int, seed: int = 11) -> tuple[bytes, int]:
    """About ``size_bytes`` of records/ JSON Lines as ingestion writes them, and their count."""
    rng = random.Random(seed)
    pool = []
    for n in range(min(20_000, size_bytes // 150 + 1)):
        fraction = rng.choice(["", f".{rng.randint(0, 999):03d}000"])
        record: dict[str, Any] = {
            "id": f"evt-{n:08d}-{rng.getrandbits(32):08x}",
            "timestamp": f"2024-05-{rng.randint(1, days):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}{fraction}Z",
            "type": rng.choice(["click", "view", "buy", "scroll"]),
            "value": rng.randint(0, 10_000),
            "attributes": {
                "user": f"u{rng.randint(1, 10**6)}",
                "country": rng.choice(["DE", "FR", "US", "JP"]),
            },
        }
        source = rng.choice(["web", "ios", "android", None])
        if source:
            record["source"] = source
        line = json.dumps(record, separators=(",", ":"))
        if decimal:  # a literal with three decimals, as ingestion keeps it (never a float's repr)
            line = line.replace(f'"value":{record["value"]}', f'"value":{record["value"] / 8:.3f}')
        pool.append(line.encode() + b"\n")
    block = b"".join(pool)
    copies = max(1, size_bytes // len(block))
    return block * copies, len(pool) * copies


def old_core() -> types.ModuleType:
    """``handlers/aggregate.py`` of OLD_COMMIT as a module. It imports four names from
    ``handlers.ingest``, today ``handlers.framing``; when today's module lacks one, they come from
    OLD_COMMIT's ingest.py."""
    source = git_show("handlers/aggregate.py")
    try:
        from handlers.framing import Oversize, Read, iter_lines, payload_reader  # noqa: F401
    except ImportError:
        vendored = load_module("_old_ingest", git_show("handlers/ingest.py"))
        assert all(hasattr(vendored, name) for name in ("Oversize", "Read", "iter_lines", "payload_reader"))
        source = source.replace("from handlers.ingest import", "from _old_ingest import")
    else:
        source = source.replace("from handlers.ingest import", "from handlers.framing import")
    return load_module("_old_aggregate", source)


def git_show(path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:{path}"], capture_output=True, text=True, check=True
    ).stdout


def load_module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    exec(compile(source, f"{OLD_COMMIT}:{name}", "exec"), module.__dict__)  # noqa: S102 - our own code from git
    return module


def contenders(data: bytes) -> dict[str, Callable[[], object]]:
    import msgspec

    from handlers.aggregation import aggregate_stream
    from handlers.framing import CHUNK_BYTES, payload_reader

    old = old_core()
    decode_lines = msgspec.json.Decoder().decode_lines

    def floor() -> None:
        read = payload_reader(io.BytesIO(data).read, True)
        carry = b""
        while chunk := read(CHUNK_BYTES):
            chunk = carry + chunk if carry else chunk
            cut = chunk.rfind(b"\n") + 1
            decode_lines(chunk[:cut])
            carry = chunk[cut:]
        decode_lines(carry)

    return {
        "old": lambda: old.aggregate_stream(io.BytesIO(data).read, WINDOW_SECONDS, DIMENSIONS, METRICS),
        "new": lambda: aggregate_stream(io.BytesIO(data).read, WINDOW_SECONDS, DIMENSIONS, METRICS),
        "floor": floor,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=20.0, help="records per shape, decompressed")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; each figure is the best round")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}")
    args = parser.parse_args()
    shapes = [shape.strip() for shape in args.shapes.split(",")]
    print(f"Python {platform.python_version()} on {platform.machine()}, {args.repeats} rounds")

    inputs = {}
    for shape in shapes:
        decimal, days = SHAPES[shape]
        plain, count = records(int(args.size_mb * (1 << 20)), decimal, days)
        inputs[shape] = (gzip.compress(plain, compresslevel=1, mtime=0), len(plain), count)
    work = {shape: contenders(inputs[shape][0]) for shape in shapes}
    for shape in shapes:  # the same answer from both cores, or the comparison means nothing
        old, new = work[shape]["old"](), work[shape]["new"]()
        if old.counts != new.counts or len(old.groups) != len(new.groups):  # type: ignore[attr-defined]
            raise SystemExit(f"{shape}: the old and new cores disagree on counts or groups")

    best: dict[tuple[str, str], float] = {}
    rounds: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for shape in shapes:
            for name, run in work[shape].items():
                started = time.process_time()
                run()
                elapsed = time.process_time() - started
                best[shape, name] = min(best.get((shape, name), float("inf")), elapsed)
                rounds.setdefault((shape, name), []).append(elapsed)

    print("| shape | measurement | records MB | CPU s | MB/s per CPU s | records/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for shape in shapes:
        _, size, count = inputs[shape]
        for name in work[shape]:
            seconds = best[shape, name]
            print(
                f"| {shape} | {name} | {size / 1e6:.1f} | {seconds:.3f} | {size / 1e6 / seconds:.1f} |"
                f" {count / seconds:,.0f} |"
            )
    for shape in shapes:
        old, new, floor = (best[shape, name] for name in ("old", "new", "floor"))
        # The same ratio within each round (new and floor measured moments apart), its median over the
        # rounds: a busy moment that slows one of the two best rounds moves it less.
        paired = statistics.median(
            f / n for f, n in zip(rounds[shape, "floor"], rounds[shape, "new"], strict=True)
        )
        print(
            f"{shape}: new / old {old / new:.2f}x, new / floor {floor / new:.2f}"
            f" (best rounds), {paired:.2f} (median of the rounds' own ratios)"
        )


if __name__ == "__main__":
    main()
