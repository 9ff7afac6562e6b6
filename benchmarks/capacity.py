"""Capacity benchmark: each stage's throughput per CPU second, what it means at each Lambda memory setting,
and what a GB of raw input costs to put through the chain.

Run: ``.venv/bin/python benchmarks/capacity.py [--size-mb 50] [--repeats 3] [--database-url URL]``
(``scripts/with-throwaway-postgres .venv/bin/python benchmarks/capacity.py`` loads into PostgreSQL;
without a URL the analytics load goes into a SQLite file, whose work is then in this process's CPU time).

It measures, on this machine, in one process, best of ``--repeats`` rounds (a round runs every stage once,
so that a busy moment touches all of them alike), the CPU time (``time.process_time``: on a shared machine
the wall clock mostly measures the neighbours) of each stage's work on its real input, chained:

* ingestion: ``handlers.ingestion_core.ingest`` of ``--size-mb`` of realistic raw JSON Lines (the rich
  clickstream records of benchmarks/ingestion.py) into the production gzip spool (``LineSpool``);
* processing: ``aggregate_stream`` and ``to_document`` of the records/ object that ingestion wrote;
* analytics: ``read_document``, ``groups_from_document`` and ``database.load`` of the aggregates document
  that processing wrote, each round as a new raw version (a real load, never a duplicate).

Each stage's rate is bytes of its input object (what the S3 event's size counts) per CPU second; this is
what ``handlers.contract.PLANNING_RATES`` holds. From the rates it prints, with Lambda's CPU share
(``min(1, memory / 1769)``) and the margin ``handlers.deadline`` keeps back:

* per stage and memory setting, the largest input object that finishes within the stage's default timeout
  and within Lambda's 900 s maximum;
* the cost of one GB of raw input through the chain at each memory setting, on x86_64 and arm64, from the
  price list below (Lambda GB-seconds and requests, S3 PUT and GET requests).

Assumptions, printed with the figures: Lambda's vCPU is as fast per second as this machine's core, and
arm64's as x86_64's (no documented per-vCPU figure was found; AWS states only "up to 34% better price
performance"); one records/ object per raw object of ``--object-mb`` (ingestion's parts multiply the
processing and analytics requests, which cost fractions of a cent). Figures go to docs/capacity.md; this
is not a test.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import datetime
import gzip
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ingestion import SpoolSink, generate  # noqa: E402
from handlers import contract  # noqa: E402
from handlers.contract import Stage  # noqa: E402
from handlers.deadline import cpu_share, largest_object, margin_seconds, planning_rate  # noqa: E402

MEMORY_SETTINGS_MB = (128, 512, 1024, contract.FULL_VCPU_MEMORY_MB, 3008, 10240)
LAMBDA_MAX_TIMEOUT_SECONDS = 900
GB = 1 << 30

# Prices, US East (N. Virginia), on-demand, first tier; read on 2026-12-03 from
# https://aws.amazon.com/lambda/pricing/ and https://aws.amazon.com/s3/pricing/ (S3 Standard requests).
PRICES_DATE = "2026-12-03"
PRICES_SOURCES = ("https://aws.amazon.com/lambda/pricing/", "https://aws.amazon.com/s3/pricing/")
PRICES = {
    "lambda_gb_second": {"x86_64": 0.0000166667, "arm64": 0.0000133334},
    "lambda_request": 0.20 / 1_000_000,
    "s3_put": 0.005 / 1000,  # PUT, COPY, POST, LIST; each multipart part is one
    "s3_get": 0.0004 / 1000,  # GET, SELECT and all other requests
}
MULTIPART_BYTES = 8 << 20
GATHER_REL, GATHER_TAG = (
    "capacity/version.jsonl",
    "0065A1B2C3",
)  # boto3's upload_fileobj: multipart above 8 MiB, in 8 MiB parts


GZ = "ingestion of .jsonl.gz"  # the ingestion stage again, on gzip raw input (its event size is compressed)
WHAT = {
    Stage.INGESTION: "raw JSON Lines",
    GZ: "raw JSON Lines, gzip -6",
    Stage.PROCESSING: "one records/ part, gzip",
    Stage.ANALYTICS: "that part's aggregates",
}


def measure_stages(size_mb: float, repeats: int, database_url: str | None) -> dict[str, Any]:
    """CPU seconds of each stage on its chained input, best of ``repeats`` rounds, and the sizes."""
    from handlers.aggregation import aggregate_stream
    from handlers.config import default_record_schema
    from handlers.documents import Origin, read_groups, to_document
    from handlers.framing import detect_format
    from handlers.ingestion_core import ingest
    from handlers.records import RecordChecker
    from handlers.s3io import GZIP_LEVEL, LineSpool

    workdir = Path(tempfile.mkdtemp(prefix="capacity-"))
    raw_path, gz_path = workdir / "input.jsonl", workdir / "input.jsonl.gz"
    records_count = generate(raw_path, int(size_mb * (1 << 20)), rich=True)
    gz_path.write_bytes(gzip.compress(raw_path.read_bytes(), compresslevel=6, mtime=0))
    checker = RecordChecker(default_record_schema())
    window, dimensions, metrics = (
        contract.DEFAULT_WINDOW,
        contract.DEFAULT_DIMENSIONS,
        contract.DEFAULT_METRICS,
    )
    window_seconds = contract.WINDOWS[window]
    engine, setting = _database(database_url, workdir, window, dimensions, metrics)
    outputs: dict[str, Any] = {}

    def ingestion(path: Path) -> Callable[[], None]:
        fmt = detect_format(path.name, contract.INPUT_SUFFIXES)

        def run() -> None:
            with path.open("rb") as raw, LineSpool(compress=True) as spool:
                sink = SpoolSink(spool)  # the production spool, as the handler writes it
                counts = ingest(raw.read, fmt, checker, contract.DEFAULT_MAX_RECORD_BYTES, {"key": "k"}, sink)
                if counts.records_quarantined:
                    raise SystemExit(f"the generated input has bad records: {counts}")
                outputs["records"] = spool.finish().read()

        return run

    def processing() -> None:
        result = aggregate_stream(io.BytesIO(outputs["part"]).read, window_seconds, dimensions, metrics)
        outputs["groups"] = len(result.groups)
        origin = Origin(rel="k", sequencer="1", version_id=None)
        outputs["aggregates"] = to_document(
            result, {"key": "k"}, window, window_seconds, dimensions, metrics, origin=origin
        )

    loads = iter(range(1, 1 << 30))

    def analytics() -> None:
        from handlers import database

        _, groups = read_groups(outputs["aggregates"])  # as the handler reads it
        n = next(loads)
        origin = database.Origin("capacity", f"{n:X}", None)
        database.load(engine, f"aggregates/capacity/{n:X}.json", f"{n:064x}", setting, origin, groups)

    stages: dict[str, Callable[[], None]] = {
        Stage.INGESTION: ingestion(raw_path),
        GZ: ingestion(gz_path),
        Stage.PROCESSING: processing,
        Stage.ANALYTICS: analytics,
    }
    # A first pass, untimed: imports, and the chained inputs. Processing reads one records/ part as ingestion
    # cuts them (at most DEFAULT_RECORDS_PART_BYTES of lines, compressed as the spool does).
    stages[Stage.INGESTION]()
    plain = gzip.decompress(outputs["records"])
    cut = plain.rfind(b"\n", 0, contract.DEFAULT_RECORDS_PART_BYTES) + 1 or len(plain)
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    outputs["part"] = packer.compress(plain[:cut]) + packer.flush()
    processing()
    best: dict[str, float] = {}
    wall: dict[str, float] = {}
    for _ in range(repeats):
        for stage, run in stages.items():
            started, started_wall = time.process_time(), time.perf_counter()
            run()
            cpu, elapsed = time.process_time() - started, time.perf_counter() - started_wall
            if cpu < best.get(stage, math.inf):
                best[stage], wall[stage] = cpu, elapsed
    engine.dispose()
    raw_size = raw_path.stat().st_size
    sizes = {
        Stage.INGESTION: raw_size,
        GZ: gz_path.stat().st_size,
        Stage.PROCESSING: len(outputs["part"]),
        Stage.ANALYTICS: len(outputs["aggregates"]),
    }
    raw_path.unlink()
    gz_path.unlink()
    return {
        "cpu": best,
        "wall": wall,
        "sizes": sizes,
        "records": records_count,
        "groups": outputs["groups"],
        "part_plain": cut,
        "records_ratio": len(outputs["records"]) / raw_size,  # records/ gzip bytes per raw byte
        "plain_ratio": len(plain) / raw_size,  # records/ lines per raw byte
        "database": engine.url.get_backend_name(),
        "document": outputs["aggregates"],
    }


def _database(url: str | None, workdir: Path, window: str, dimensions: Any, metrics: Any) -> tuple[Any, Any]:
    from handlers import database

    url = url or f"sqlite:///{workdir / 'capacity.db'}"
    database.migrate(url)
    return database.connect(url), database.Setting(window, tuple(dimensions), tuple(metrics))


class _Body:
    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._file.read(n)


WRITTEN = datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)  # every part's LastModified


class _Bucket:
    """The few S3 calls ``handlers.versions.gather`` makes, over documents held in memory."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:  # the version's report: none yet, so part 0, not the newest, gathers
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")
        return {"Body": _Body(self.objects[Key]), "ContentLength": len(self.objects[Key])}

    def get_paginator(self, _name: str) -> Any:
        objects = self.objects

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> Any:
                items = [
                    {"Key": k, "Size": len(v), "LastModified": WRITTEN}
                    for k, v in sorted(objects.items())
                    if k.startswith(Prefix)
                ]
                return iter([{"Contents": items}])

        return Pages()


def version_parts(document: bytes, parts: int, disjoint: bool) -> dict[str, bytes]:
    """``parts`` aggregates documents of one raw version, each the benchmark's part document renumbered;
    ``disjoint``: each part's groups moved to a year of its own (another leap year, so every window start
    stays a real date), as if the parts covered different hours; else every part has the same groups."""
    from handlers.events import part_key

    base = msgspec.json.decode(document)
    leap_years = [year for year in range(2024, 9999, 4) if calendar.isleap(year)]
    out = {}
    for k in range(parts):
        d = dict(base, origin=dict(base["origin"], rel=GATHER_REL, sequencer=GATHER_TAG, part=k))
        d["origin"]["parts"] = parts if k == 0 else None
        if disjoint and k:
            year = str(leap_years[k])
            d["groups"] = sorted(
                (dict(g, window_start=year + g["window_start"][4:]) for g in d["groups"]),
                key=lambda g: g["window_start"],
            )
        key = part_key(contract.AGGREGATES_PREFIX, GATHER_REL, GATHER_TAG, k, contract.AGGREGATES_SUFFIX)
        out[key] = msgspec.json.encode(d, order="sorted")
    return out


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


def _in_child(document: Path, parts: int, disjoint: bool) -> dict[str, float]:
    """CPU seconds of gathering a version of ``parts`` and the peak resident memory that added, in a fresh
    interpreter (``--gather-child``): this process's heap, grown by the stages, would hide it."""
    command = [sys.executable, __file__, "--gather-child", f"{document},{parts},{int(disjoint)}"]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def gather_child(spec: str) -> None:
    """The child's side of ``_in_child``: build the version's documents, then gather them, measured."""
    path, parts, disjoint = spec.split(",")
    objects = version_parts(Path(path).read_bytes(), int(parts), disjoint == "1")
    key = next(iter(objects))
    import handlers.versions  # noqa: F401 (imported before the measurement starts)

    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak, to the RSS now
    start = _status_bytes("VmRSS")
    started = time.process_time()
    groups = _gather(objects, key)
    cpu = time.process_time() - started
    print(json.dumps({"cpu": cpu, "peak": _status_bytes("VmHWM") - start, "groups": groups}))


def _gather(objects: dict[str, bytes], key: str) -> int:
    """What the completing invocation does once its own part (``key``) is loaded; the version's groups."""
    from handlers import versions
    from handlers.documents import read_groups

    source = {"bucket": "b", "key": key, "sha256": hashlib.sha256(objects[key]).hexdigest()}
    document, groups = read_groups(objects[key])
    report = versions.gather(_Bucket(objects), "b", (source, document), None, 10, groups, report=("b", "r"))
    if isinstance(report, str):
        raise SystemExit(f"the version is not complete: {report}")
    return int(report["totals"]["groups"])


def measure_gather(document: bytes, counts: tuple[int, ...]) -> list[dict[str, Any]]:
    """What the analytics invocation that completes a version spends on ``handlers.versions.gather``
    (read, check and merge every other part's document, build the report) at each number of parts."""
    path = Path(tempfile.mkdtemp(prefix="capacity-")) / "part.json"
    path.write_bytes(document)
    results = []
    for disjoint in (False, True):
        for parts in counts:
            objects = version_parts(document, parts, disjoint)
            key = next(iter(objects))

            size = sum(len(v) for k, v in objects.items() if k != key)
            results.append(
                {"parts": parts, "disjoint": disjoint, "bytes": size, **_in_child(path, parts, disjoint)}
            )
    return results


def default_timeouts() -> dict[str, int]:
    """Each stage's default timeout, from the program's config defaults."""
    from components.config import parse_config

    config = parse_config({}, project="data-pipeline", stack="capacity")
    timeouts = {stage: config.stages[stage].timeout_seconds for stage in contract.STAGES}
    return {**timeouts, GZ: timeouts[Stage.INGESTION]}


def chain_cost(
    rates: dict[str, float], measured: dict[str, Any], memory_mb: int, architecture: str, object_bytes: int
) -> dict[str, float]:
    """Dollars for one GiB of raw JSON Lines in objects of ``object_bytes``, every stage at ``memory_mb``.

    Ingestion reads the object and writes its records/ in parts; processing and analytics run once per part
    (analytics' input, an aggregates document, grows with the part's groups, not its records), and the
    version's one report is written once, by the invocation that reads every other part's document again
    (``measured["gather_rate"]``, bytes of them per CPU second)."""
    objects = GB / object_bytes
    parts = max(1, math.ceil(measured["plain_ratio"] * object_bytes / contract.DEFAULT_RECORDS_PART_BYTES))
    records_gzip = measured["records_ratio"] * object_bytes
    cpu_seconds = (
        object_bytes / rates[Stage.INGESTION]
        + records_gzip / rates[Stage.PROCESSING]
        + parts * measured["sizes"][Stage.ANALYTICS] / rates[Stage.ANALYTICS]
        + (parts - 1) * measured["sizes"][Stage.ANALYTICS] / measured["gather_rate"]  # the version's report
    )
    seconds = cpu_seconds / cpu_share(memory_mb) * objects
    part_gzip = records_gzip / parts
    part_puts = 1 if part_gzip <= MULTIPART_BYTES else math.ceil(part_gzip / MULTIPART_BYTES) + 2
    # records/ parts, each part k >= 1's release COPY (PUT-class), aggregates/ per part, one report
    puts = objects * (parts * part_puts + parts - 1 + parts + 1)
    # The raw object, each part, each part's aggregates; each analytics invocation's HEAD of part 0; the
    # completing invocation's HEAD and GET of every other part's aggregates (GET-class: HEAD is billed so).
    gets = objects * (1 + 2 * parts + parts + 2 * (parts - 1))
    return {
        "seconds": seconds,
        "compute": seconds * memory_mb / 1024 * PRICES["lambda_gb_second"][architecture],
        "requests": objects * (1 + 2 * parts) * PRICES["lambda_request"],
        "s3": puts * PRICES["s3_put"] + gets * PRICES["s3_get"],
    }


def _mb(value: float) -> str:
    return f"{value / 1e6:,.0f} MB" if value < 1e10 else f"{value / 1e9:,.0f} GB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=100.0, help="raw JSON Lines input, MiB")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each figure is the best round")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--object-mb", type=float, default=1024.0, help="raw object size for the cost, MiB")
    parser.add_argument(
        "--gather-parts",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=(17, 80),
        help="numbers of parts of a version to gather (17: 1 GiB raw, 80: 5 GB), comma-separated",
    )
    parser.add_argument("--gather-child", help=argparse.SUPPRESS)  # measure_gather's fresh interpreter
    args = parser.parse_args()
    if args.gather_child:
        gather_child(args.gather_child)
        return
    measured = measure_stages(args.size_mb, args.repeats, args.database_url)
    cpu, sizes = measured["cpu"], measured["sizes"]
    rates = {stage: sizes[stage] / cpu[stage] for stage in WHAT}
    print(
        f"Python {platform.python_version()} on {platform.machine()} ({_cpu_model()}), "
        f"{os.cpu_count()} cores, best of {args.repeats} rounds; analytics into {measured['database']}"
    )
    print(
        f"input: {sizes[Stage.INGESTION] / 1e6:.1f} MB raw JSON Lines ({sizes[GZ] / 1e6:.1f} MB gzip), "
        f"{measured['records']:,} records; records/ gzip is {measured['records_ratio']:.3f} of the raw"
        f" bytes; one part: {measured['part_plain'] / 1e6:.1f} MB of lines, {measured['groups']:,} groups"
    )
    print()
    print("| stage | input | input MB | CPU s | wall s | MB of input per CPU s | planning rate (contract) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for stage, what in WHAT.items():
        planned = contract.GZIP_INPUT_PLANNING_RATE if stage == GZ else contract.PLANNING_RATES[stage]
        print(
            f"| {stage} | {what} | {sizes[stage] / 1e6:.2f} | {cpu[stage]:.3f} | "
            f"{measured['wall'][stage]:.3f} | {rates[stage] / 1e6:.2f} | {planned / 1e6:.2f} |"
        )
    print(
        f"\nprocessing: {measured['part_plain'] / cpu[Stage.PROCESSING] / 1e6:.2f} MB of records/ lines per"
        f" CPU s. analytics: {measured['groups'] / cpu[Stage.ANALYTICS]:,.0f} groups per CPU s."
    )

    timeouts = default_timeouts()
    print(
        "\nLargest input object that finishes in time (the rate above, CPU share min(1, memory / 1769), the"
    )
    print("margin kept back), per memory setting, at the stage's default timeout and at Lambda's 900 s:\n")
    print("| stage | timeout s | " + " | ".join(f"{m} MB" for m in MEMORY_SETTINGS_MB) + " |")
    print("| --- | ---: |" + " ---: |" * len(MEMORY_SETTINGS_MB))
    for stage in WHAT:
        for timeout in sorted({timeouts[stage], LAMBDA_MAX_TIMEOUT_SECONDS}):
            cells = [_mb(largest_object(rates[stage], m, timeout)) for m in MEMORY_SETTINGS_MB]
            print(f"| {stage} | {timeout} | " + " | ".join(cells) + " |")
    print(f"\n(margin: {margin_seconds(LAMBDA_MAX_TIMEOUT_SECONDS):.0f} s of 900 s)")
    print(
        "\nThe limit the deadline guard enforces: it refuses before reading above the planning rate"
        " (handlers.contract.PLANNING_RATES, GZIP_INPUT_PLANNING_RATE) at the same share and margin:\n"
    )
    print("| stage | timeout s | " + " | ".join(f"{m} MB" for m in MEMORY_SETTINGS_MB) + " |")
    print("| --- | ---: |" + " ---: |" * len(MEMORY_SETTINGS_MB))
    for stage in WHAT:
        planned = planning_rate(Stage.INGESTION if stage == GZ else stage, "x.gz" if stage == GZ else "x")
        for timeout in sorted({timeouts[stage], LAMBDA_MAX_TIMEOUT_SECONDS}):
            cells = [_mb(largest_object(planned, m, timeout)) for m in MEMORY_SETTINGS_MB]
            print(f"| {stage} | {timeout} | " + " | ".join(cells) + " |")
    gathered = measure_gather(measured["document"], args.gather_parts)
    print_gather(gathered, timeouts[Stage.ANALYTICS])
    measured["gather_rate"] = min(r["bytes"] / r["cpu"] for r in gathered)
    part_seconds = [
        sizes[Stage.PROCESSING] / rates[Stage.PROCESSING] / cpu_share(m) for m in MEMORY_SETTINGS_MB
    ]
    print(
        "A records/ part takes processing "
        + ", ".join(f"{s:.1f} s at {m} MB" for s, m in zip(part_seconds, MEMORY_SETTINGS_MB, strict=True))
    )

    object_bytes = int(args.object_mb * (1 << 20))
    print(
        f"\nCost of 1 GiB of raw JSON Lines through the chain, in {args.object_mb:g} MiB objects, every stage"
        f" at the memory setting; prices of {PRICES_DATE} (us-east-1, {', '.join(PRICES_SOURCES)}):\n"
    )
    print(
        "| memory | chain Lambda s | x86_64 compute | arm64 compute | Lambda requests | S3 requests |"
        " total x86_64 | total arm64 |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for memory in MEMORY_SETTINGS_MB:
        x86, arm = (chain_cost(rates, measured, memory, a, object_bytes) for a in ("x86_64", "arm64"))
        fixed = x86["requests"] + x86["s3"]
        print(
            f"| {memory} MB | {x86['seconds']:,.0f} | ${x86['compute']:.4f} | ${arm['compute']:.4f} | "
            f"${x86['requests']:.7f} | ${x86['s3']:.6f} | ${x86['compute'] + fixed:.4f} | "
            f"${arm['compute'] + fixed:.4f} |"
        )
    print(
        "\nAssumed: a Lambda vCPU-second does what a CPU second does here, on arm64 as on x86_64 (no"
        " documented per-vCPU figure); the handlers use one core, so memory above 1769 MB buys no speed."
    )


def print_gather(results: list[dict[str, Any]], timeout: int) -> None:
    print(
        "\nThe analytics invocation that completes a version reads and merges every other part's document"
        " (handlers.versions.gather), in a fresh interpreter (CPU s; peak: the resident memory it added):\n"
    )
    print(
        "| parts | groups | documents MB | CPU s | peak MB | MB per CPU s | "
        + " | ".join(f"s at {m} MB" for m in MEMORY_SETTINGS_MB[:4])
        + f" | guard's limit at {timeout} s, 512 / 1024 / 1769 MB |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |" + " ---: |" * 5)
    for r in results:
        seconds = [r["cpu"] / cpu_share(m) for m in MEMORY_SETTINGS_MB[:4]]
        per_part = r["bytes"] / max(r["parts"] - 1, 1)  # the other parts' documents, each
        limits = [
            1 + largest_object(contract.GATHER_PLANNING_RATE, m, timeout) / per_part
            for m in (512, 1024, 1769)
        ]
        groups = "disjoint" if r["disjoint"] else "the same"
        print(
            f"| {r['parts']} | {groups} ({r['groups']:,}) | {r['bytes'] / 1e6:.1f} | {r['cpu']:.2f} | "
            f"{r['peak'] / 1e6:.0f} | {r['bytes'] / r['cpu'] / 1e6:.2f} | "
            + " | ".join(f"{x:.1f}" for x in seconds)
            + " | "
            + " / ".join(f"{x:,.0f}" for x in limits)
            + " parts |"
        )
    print(f"(planning rate GATHER_PLANNING_RATE: {contract.GATHER_PLANNING_RATE / 1e6:.2f} MB per CPU s)")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
