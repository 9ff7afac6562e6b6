"""Ingestion benchmark: throughput and peak memory of the ingestion core against baselines.

Run: ``.venv/bin/python benchmarks/ingestion.py [--size-mb 100] [--small-mb 10]``. It generates JSON
Lines input (a pool of distinct random records written repeatedly, so 100 MB takes seconds), then
measures each contender in a fresh subprocess so that every peak-RSS figure is its own:

* ``core``       — ``handlers.ingestion_core.ingest`` (split, parse, duplicate-key check, schema validation,
                   timestamp normalisation) into a sink that discards the lines;
* ``core+gzipN`` — the same into the production spool (``handlers.s3io.LineSpool``) at gzip level N;
* ``naive``      — read the whole file, ``json.loads`` every line, keep every record in a list;
* ``parse:X``    — parse-and-discard with parser X (orjson, msgspec, json) over the same 1 MiB-chunk
                   line splitting, i.e. the ceiling for any parser-bound ingestion;
* ``core@small`` — the core on the small input, to show memory does not grow with input size;
* ``core:json``  — the core on the big input's records as one ``.json`` array (an element a line), to
                   compare array framing with JSON Lines in the same rounds (``core:json@small``: the
                   small input's, for memory);
* ``core@baseline`` — with ``--baseline PATH``, the core of another ingestion core module (an earlier
                   commit's: ``git show REV:handlers/ingest.py > PATH``), or of another tree's
                   ``handlers`` package (a directory: ``git archive REV handlers | tar -x -C PATH``) on
                   the big input, so that a change is compared with what it replaces in the same run,
                   round by round;
* ``encode:X`` / ``validate:X`` — CPU per record to serialise (orjson, msgspec) or schema-check
                   (fastjsonschema if installed, jsonschema-rs) records parsed beforehand.

Prints a table: MB/s and records/s of input per CPU second (process time: on a shared machine the
wall-clock time mostly measures the neighbours; both are printed), best of ``--repeats`` rounds
(each round runs every measurement once), and peak RSS growth during the measurement (the
kernel's high-water mark, reset through /proc/self/clear_refs once the imports are done).
Numbers go to docs/benchmarks.md; this is not run by the test suite.

With ``--bad-every N`` it measures only ``core`` (and ``core@baseline``), on the big input as it is and
with every N-th line replaced by a bad line of each kind in ``BAD_LINES`` (one input per kind, all in
the same rounds), and prints MB/s per kind: what bad lines cost the batched checks.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# The bad lines of --bad-every: a truncated object (invalid JSON), an array (not an object), a record
# without its "type" field (a schema violation).
BAD_LINES = {
    "invalid_json": b'{"id":"bad-json","timestamp":"2024-05-01T10:00:00Z","type":"click","value":1\n',
    "not_an_object": b'["bad-array","2024-05-01T10:00:00Z"]\n',
    "schema_violation": b'{"id":"bad-no-type","timestamp":"2024-05-01T10:00:00Z","value":1}\n',
}


def with_bad_lines(source: Path, target: Path, every: int, bad: bytes) -> int:
    """``source`` with every ``every``-th line replaced by ``bad``; returns how many were replaced."""
    replaced = 0
    with source.open("rb") as lines, target.open("wb") as out:
        for number, line in enumerate(lines, start=1):
            if number % every:
                out.write(line)
            else:
                out.write(bad)
                replaced += 1
    return replaced


def load_core(path: Path | None) -> ModuleType:
    """Today's ingestion core, or the module at ``path``: an earlier single-module core
    (``git show REV:handlers/ingest.py``), loaded under its own name.

    Today's core is six modules (framing, timestamps, duplicate keys, bad lines, record checks, the
    driver); it is returned as one namespace holding all their names, as the earlier single module
    did. A directory ``path`` holds another tree's ``handlers`` package, imported instead of today's."""
    if path is not None and path.is_dir():
        for name in [name for name in sys.modules if name.split(".")[0] == "handlers"]:
            del sys.modules[name]
        sys.path.insert(0, str(path))
        path = None
    if path is None:
        core = ModuleType("ingestion_core_view")
        for name in ("framing", "timestamps", "duplicate_keys", "bad_lines", "records", "ingestion_core"):
            try:
                module = importlib.import_module(f"handlers.{name}")
            except ModuleNotFoundError:  # an earlier tree without it
                continue
            core.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
        return core
    spec = importlib.util.spec_from_file_location("ingest_baseline", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path} as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def generate(path: Path, size_bytes: int, rich: bool = False, seed: int = 7) -> int:
    """Write about ``size_bytes`` of JSON Lines; returns the record count."""
    rng = random.Random(seed)
    types, sources = ["click", "view", "buy", "scroll"], ["web", "ios", "android", None]
    pool = []
    for n in range(20_000):
        record: dict[str, Any] = {
            "id": f"evt-{n:08d}-{rng.getrandbits(32):08x}",
            "timestamp": rng.choice(
                [
                    f"2024-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
                    f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z",
                    f"2024-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00+02:00",
                    1714500000 + rng.randint(0, 10**6),
                ]
            ),
            "type": rng.choice(types),
            "value": round(rng.uniform(0, 1000), 3),
            "attributes": {
                "user": f"u{rng.randint(1, 10**6)}",
                "country": rng.choice(["DE", "FR", "US", "JP"]),
            },
        }
        if rich:  # a clickstream event as trackers send it: page, referrer, agent, session, screen
            record["attributes"] |= {
                "url": f"https://shop.example.com/products/{rng.getrandbits(40):x}?utm_source=news&utm_medium=email",
                "referrer": f"https://www.search.example/search?q=item+{rng.randint(1, 10**5)}",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131",
                "session": f"{rng.getrandbits(128):032x}",
                "ip": f"198.51.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                "screen": {"w": rng.choice([1920, 1440, 390]), "h": rng.choice([1080, 900, 844])},
                "consent": rng.choice([True, False]),
            }
            record["latency_ms"] = rng.randint(1, 5000)
        source = rng.choice(sources)
        if source:
            record["source"] = source
        pool.append(json.dumps(record, separators=(",", ":")).encode() + b"\n")
    block = b"".join(pool)
    per_block = len(pool)
    count = 0
    with path.open("wb") as out:
        written = 0
        while written < size_bytes:
            take = (
                block
                if written + len(block) <= size_bytes
                else block[: block.rfind(b"\n", 0, size_bytes - written) + 1]
            )
            if not take:
                break
            out.write(take)
            written += len(take)
            count += per_block if take is block else take.count(b"\n")
    return count


def as_array(lines: Path, array: Path) -> None:
    """The records of a JSON Lines file as one ``.json`` array, an element a line (``[``, ``,\\n``, ``]``)."""
    with lines.open("rb") as source, array.open("wb") as out:
        out.write(b"[")
        separator = b""
        while block := source.read(1 << 20):
            block += source.readline()
            out.write(separator + block.rstrip(b"\n").replace(b"\n", b",\n"))
            separator = b",\n"
        out.write(b"]\n")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> float:
    """Reset the peak-RSS mark (Linux: write 5 to clear_refs) and return the current RSS in MB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def peak_mb() -> float:
    return _status_mb("VmHWM")


class Discard:
    def valid(self, line: bytes) -> None:
        pass

    def valid_lines(self, block: bytes, count: int) -> None:
        pass

    def quarantine(self, line: bytes) -> None:
        pass


def measure(kind: str, path: Path, baseline_core: Path | None = None) -> dict[str, Any]:
    """One measurement, run inside its own process."""
    import orjson

    from handlers.config import default_record_schema
    from handlers.framing import iter_lines
    from handlers.s3io import LineSpool

    core = load_core(baseline_core if kind == "core@baseline" else None)
    InputFormat, ingest = core.InputFormat, core.ingest
    checker = core.RecordChecker(default_record_schema())
    baseline = reset_peak()
    size = path.stat().st_size
    start, cpu_start = time.perf_counter(), time.process_time()
    records = 0
    with path.open("rb", buffering=0) as f:
        if kind in ("core", "core@small", "core@baseline") or kind.startswith(("core+gzip", "core:json")):
            if kind.startswith("core+gzip"):
                sink: Any = SpoolSink(LineSpool(compress=True, level=int(kind.removeprefix("core+gzip"))))
            else:
                sink = Discard()
            fmt = InputFormat(False, kind.startswith("core:json"))
            counts = ingest(f.read, fmt, checker, 1 << 20, {"bucket": "b", "key": "k"}, sink)
            records = counts.records_read
            assert counts.records_valid == records or ".bad-" in path.name, counts
            assert counts.conserved, counts
            if isinstance(sink, SpoolSink):
                output = sink.spool.finish()
                output.seek(0, 2)
                extra = {"output_mb": round(output.tell() / 1e6, 2)}
                sink.spool.close()
            else:
                extra = {}
        elif kind == "naive":
            data = f.read()
            kept = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
            records = len(kept)
            extra = {}
        elif kind.startswith("parse:"):
            parser = kind.removeprefix("parse:")
            if parser == "orjson":
                import orjson

                loads = orjson.loads
            elif parser == "msgspec":
                import msgspec

                loads = msgspec.json.decode
            else:
                loads = json.loads
            for line in iter_lines(f.read, 1 << 20):
                loads(line)
                records += 1
            extra = {}
        elif kind.split(":")[0] in ("encode", "validate"):
            action, library = kind.split(":")
            import msgspec

            parsed = msgspec.json.Decoder().decode_lines(f.read())
            records = len(parsed)
            extra = {"us_per_record": _per_record(action, library, parsed)}
        else:
            raise SystemExit(f"unknown measurement {kind}")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "kind": kind,
        "mb": round(size / 1e6, 1),
        "records": records,
        "wall_s": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        "mb_per_s": round(size / 1e6 / cpu, 1),
        "records_per_s": round(records / cpu),
        "peak_rss_growth_mb": round(peak_mb() - baseline, 1),
        **extra,
    }


def _per_record(action: str, library: str, parsed: list[Any]) -> float | str:
    """CPU microseconds per record to encode or validate already-parsed records with ``library``."""
    from handlers.config import default_record_schema

    if action == "encode":
        if library == "orjson":
            import orjson

            work = orjson.dumps
        else:
            import msgspec

            work = msgspec.json.Encoder().encode
    elif library == "fastjsonschema":
        try:
            import fastjsonschema
        except ImportError:
            return "not installed"
        work = fastjsonschema.compile(default_record_schema())
    else:
        import jsonschema_rs

        work = jsonschema_rs.validator_for(default_record_schema()).is_valid
    start = time.process_time()
    for record in parsed:
        work(record)
    return round((time.process_time() - start) / len(parsed) * 1e6, 2)


class SpoolSink:
    """An ingestion sink writing every line, valid or quarantined, into one ``LineSpool``."""

    def __init__(self, spool: Any) -> None:
        self.spool = spool

    def valid(self, line: bytes) -> None:
        self.spool.write(line)

    def valid_lines(self, block: bytes, count: int) -> None:
        self.spool.write_lines(block, count)

    def quarantine(self, line: bytes) -> None:
        self.spool.write(line)


def run(kind: str, path: Path, baseline: Path | None = None) -> dict[str, Any]:
    extra = ["--baseline", str(baseline)] if baseline is not None else []
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, "--input", str(path), *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def best_of(plan: list[tuple[str, Path]], repeats: int, baseline: Path | None = None) -> list[dict[str, Any]]:
    """The least CPU time of each (kind, input) over ``repeats`` rounds of the whole plan.

    Each round runs every measurement once, so a change in the neighbours' load affects the core
    and its baselines alike instead of whichever happened to run during it.
    """
    rounds = [[run(kind, path, baseline) for kind, path in plan] for _ in range(repeats)]
    return [min(tries, key=lambda r: r["cpu_s"]) for tries in zip(*rounds, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=100)
    parser.add_argument("--small-mb", type=float, default=10)
    parser.add_argument("--gzip-levels", default="1,6")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--records", choices=("small", "rich"), default="small", help="~155 B or ~505 B records"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="an earlier handlers/ingest.py (one module) or a directory holding an earlier handlers/"
        " package, measured as core@baseline in the same rounds",
    )
    parser.add_argument("--bad-every", type=int, default=0, help="measure bad lines: every n-th line bad")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    baseline = args.baseline.resolve() if args.baseline else None
    if args.measure:
        print(json.dumps(measure(args.measure, args.input, baseline)))
        return
    if args.bad_every:
        bad_lines(args, baseline)
        return
    with tempfile.TemporaryDirectory(prefix="ingestion-bench-") as tmp:
        big, small = Path(tmp, "big.jsonl"), Path(tmp, "small.jsonl")
        start = time.perf_counter()
        n_big = generate(big, int(args.size_mb * 1e6), args.records == "rich")
        n_small = generate(small, int(args.small_mb * 1e6), args.records == "rich")
        elapsed = time.perf_counter() - start
        print(f"generated {big.stat().st_size / 1e6:.1f} MB ({n_big} records)", end=" ")
        print(f"and {small.stat().st_size / 1e6:.1f} MB ({n_small} records) in {elapsed:.1f} s")
        kinds = ["core", *(["core@baseline"] if baseline else [])]
        kinds += [f"core+gzip{level}" for level in args.gzip_levels.split(",")]
        kinds += ["naive", "parse:orjson", "parse:msgspec", "parse:json"]
        cost_kinds = ("encode:orjson", "encode:msgspec", "validate:fastjsonschema", "validate:jsonschema_rs")
        array, small_array = Path(tmp, "big.json"), Path(tmp, "small.json")
        as_array(big, array)
        as_array(small, small_array)
        plan = [(kind, big) for kind in kinds] + [("core@small", small), ("core:json", array)]
        plan.append(("core:json@small", small_array))
        measured = best_of(plan + [(kind, small) for kind in cost_kinds], args.repeats, baseline)
        results, costs = measured[: len(plan)], measured[len(plan) :]
    columns = ("kind", "mb", "records", "wall_s", "cpu_s", "mb_per_s", "records_per_s", "peak_rss_growth_mb")
    print("| " + " | ".join(columns) + " | output_mb |")
    print("|" + "---|" * (len(columns) + 1))
    for r in results:
        print("| " + " | ".join(str(r[c]) for c in columns) + f" | {r.get('output_mb', '')} |")
    print("| per-record cost (CPU, small input, already parsed) | µs/record |")
    print("|---|---|")
    for r in costs:
        print(f"| {r['kind']} | {r['us_per_record']} |")
    by = {r["kind"]: r for r in results}
    fastest = max((r for r in results if r["kind"].startswith("parse:")), key=lambda r: r["mb_per_s"])
    core, small_core = by["core"], by["core@small"]
    print(f"core / naive baseline: {core['mb_per_s'] / by['naive']['mb_per_s']:.2f}x (target >= 2x)")
    ratio = core["mb_per_s"] / fastest["mb_per_s"]
    print(f"core / fastest parse-and-discard ({fastest['kind']}): {ratio:.2f} (target >= 0.33)")
    if "core@baseline" in by:
        old = by["core@baseline"]
        print(f"core@baseline / naive baseline: {old['mb_per_s'] / by['naive']['mb_per_s']:.2f}x")
        print(f"core@baseline / fastest parse-and-discard: {old['mb_per_s'] / fastest['mb_per_s']:.2f}")
        print(f"core / core@baseline: {core['mb_per_s'] / old['mb_per_s']:.2f}")
    print(
        f"core peak RSS growth: {small_core['peak_rss_growth_mb']} MB at {small_core['mb']} MB input,",
        end=" ",
    )
    print(f"{core['peak_rss_growth_mb']} MB at {core['mb']} MB input")
    array, small_array = by["core:json"], by["core:json@small"]
    print(
        f"core:json (the same records as one .json array) / core (.jsonl): "
        f"{array['mb_per_s'] / core['mb_per_s']:.2f} of the throughput (target >= 0.5), "
        f"peak RSS growth {small_array['peak_rss_growth_mb']} MB at {small_array['mb']} MB input,"
        f" {array['peak_rss_growth_mb']} MB at {array['mb']} MB input"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")


def bad_lines(args: argparse.Namespace, baseline: Path | None) -> None:
    """``--bad-every``: the core's MB/s on the big input as it is and with each kind of bad line."""
    with tempfile.TemporaryDirectory(prefix="ingestion-bench-") as tmp:
        clean = Path(tmp, "big.jsonl")
        count = generate(clean, int(args.size_mb * 1e6), args.records == "rich")
        inputs = {"none": clean}
        for kind, line in BAD_LINES.items():
            inputs[kind] = Path(tmp, f"big.bad-{kind}.jsonl")
            replaced = with_bad_lines(clean, inputs[kind], args.bad_every, line)
        print(f"{clean.stat().st_size / 1e6:.1f} MB, {count} lines, {replaced} bad in each bad input")
        cores = ["core", *(["core@baseline"] if baseline else [])]
        plan = [(core, path) for path in inputs.values() for core in cores]
        results = best_of(plan, args.repeats, baseline)
    print(f"| bad lines (every {args.bad_every}th) | " + " | ".join(f"{core} MB/s" for core in cores) + " |")
    print("|---|" + "---|" * len(cores))
    for at, kind in enumerate(inputs):
        row = results[at * len(cores) : (at + 1) * len(cores)]
        print(f"| {kind} | " + " | ".join(str(r["mb_per_s"]) for r in row) + " |")
    print(f"CPU time, best of {args.repeats}; python {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
