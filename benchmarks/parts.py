"""records/ parts benchmark: what cutting ingestion's output into parts (``handlers.parts``) costs.

Run: ``.venv/bin/python benchmarks/parts.py [--size-mb 50] [--part-mb 1] [--repeats 3]``. It generates
event-sized JSON Lines input (``benchmarks/ingestion.py``'s generator), then runs the ingestion core
(``handlers.ingestion_core.ingest``) into gzip spools (``handlers.s3io.LineSpool``, the production level)
two ways, in the same rounds: one part (a bound larger than the input: what ingestion did before parts)
and parts of ``--part-mb`` (each finished part's spool is closed, as the handler does after its upload;
no S3 here). Prints MB/s of input per CPU second (process time; the wall time beside it), the best of
``--repeats`` rounds, the number of parts, and the ratio of the two. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def run(path: Path, part_bytes: int) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, parts) of one ingestion of ``path`` into parts of ``part_bytes``."""
    from handlers.config import default_record_schema
    from handlers.framing import detect_format
    from handlers.ingestion_core import ingest
    from handlers.parts import Parts
    from handlers.records import RecordChecker
    from handlers.s3io import LineSpool

    checker = RecordChecker(default_record_schema())

    def ship(_index: int, spool: LineSpool, _lines: int) -> None:
        spool.finish()  # complete the gzip stream, as the upload does
        spool.close()

    parts = Parts(part_bytes, functools.partial(LineSpool, compress=True), ship)

    class Sink:
        valid = parts.valid
        valid_lines = parts.valid_lines

        def quarantine(self, line: bytes) -> None:
            pass

    fmt = detect_format(str(path), (".jsonl",))
    cpu, wall = time.process_time(), time.perf_counter()
    with path.open("rb") as f:
        ingest(f.read, fmt, checker, 1 << 20, {"bucket": "b", "key": "k"}, Sink())
    count = parts.finish()
    parts.first.finish()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    parts.close()
    return cpu, wall, count


def main() -> None:
    from ingestion import generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--part-mb", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.jsonl"
        generate(path, args.size_mb << 20)
        size_mb = path.stat().st_size / (1 << 20)
        contenders = {
            "one part": path.stat().st_size * 4,
            f"parts of {args.part_mb:g} MiB": int(args.part_mb * (1 << 20)),
        }
        best: dict[str, tuple[float, float, int]] = {}
        for _ in range(args.repeats):
            for name, bound in contenders.items():
                result = run(path, bound)
                if name not in best or result[0] < best[name][0]:
                    best[name] = result
    print(f"input: {size_mb:.1f} MB of JSON Lines; best of {args.repeats} rounds")
    print(f"{'contender':<22} {'parts':>6} {'MB/s (CPU)':>11} {'CPU s':>7} {'wall s':>7}")
    for name, (cpu, wall, count) in best.items():
        print(f"{name:<22} {count:>6} {size_mb / cpu:>11.1f} {cpu:>7.2f} {wall:>7.2f}")
    one, many = (best[name][0] for name in contenders)
    print(f"CPU of parts / CPU of one part: {many / one:.3f}")


if __name__ == "__main__":
    main()
