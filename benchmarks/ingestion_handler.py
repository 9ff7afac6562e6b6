"""Ingestion handler benchmark: the deployed handler against a naive handler doing the same job (issue 12).

Run: ``.venv/bin/python benchmarks/ingestion_handler.py [--size-mb 100] [--repeats 2] [--records small|rich]
[--s3 local|moto]``. It writes about ``--size-mb`` of JSON Lines with benchmarks/ingestion.py's generator,
every ``--bad-every``-th line replaced by a bad record (invalid JSON, a missing field, a string metric, a
timestamp without an offset, an array), and measures, each in a fresh subprocess so that every peak-RSS
figure is its own, one S3 ObjectCreated event for that object:

* ``handler``  - ``handlers.ingestion_handler.handler(event, context)``, in the function environment the
                 dev stack deploys (``components.environment.stage_environment`` of ``Pulumi.dev.yaml``,
                 plus Lambda's memory variable) and with a Lambda-like context at the stage's timeout, so
                 the deadline guard is on as in Lambda;
* ``naive``    - ``naive_handler`` below: GetObject and ``read()`` the whole body, ``json.loads`` each line,
                 validate with the ``jsonschema`` library (the reference Python implementation; its
                 validator is compiled once, before the measurement), ``datetime.fromisoformat`` for the
                 timestamp, every valid and rejected record kept in a list, then ``json.dumps``, gzip (at
                 the handler's level, ``handlers.s3io.GZIP_LEVEL``) and one PutObject per output;
* ``naive:rs`` - the same naive handler validating with jsonschema-rs, the validator the core uses: what
                 is left of the ratio once the validator is not the difference.

Every contender is warm: a first invocation on the input's first ``WARM_BYTES`` (imports, config, compiled
schema, client, first-call caches) runs before the measured one, as in a container's second invocation.
Both handlers read the same stage configuration (``handlers.config.load_ingestion``) and write records/ and
quarantine/ under the same prefixes. After each measurement the lines each wrote are counted from the
stored objects, and the run stops unless every contender wrote the valid and quarantined numbers of lines
the input was made with.

S3 (``--s3``): ``local`` (the default) is ``LocalS3``, a stand-in client that keeps each object in a file
(GetObject streams the file, an upload copies the stream into one, CopyObject is a hard link, as S3 copies
on its side), given to both handlers. ``moto`` is moto's in-process S3 (``mock_aws``), given to both too.
moto's own work lands in the measured process: its GetObject response holds a copy of the whole object,
so the handler's peak memory grows by about the object's size (its streaming reads hide behind moto's
copy) and its CPU by moto's request handling. Measured both ways, moto changed the naive handler's figures
little and hid what the handler keeps flat, hence the default (docs/benchmarks.md has the figures).

Prints, per contender, the best of ``--repeats`` rounds (each round runs every contender once, so a busy
moment touches all alike) by CPU time (process time: on a shared machine the wall clock mostly measures
the neighbours; both are printed): input MB per CPU second, peak RSS growth during the invocation (the
kernel's high-water mark, reset once the object is in S3 and the imports are done), the ratios handler ÷
naive throughput, and the machine. Figures go to docs/benchmarks.md; this is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ingestion import generate, peak_mb, reset_peak  # noqa: E402
from handlers import contract  # noqa: E402
from handlers.contract import Stage  # noqa: E402

STACK = "dev"
RAW_BUCKET, PROCESSED_BUCKET = "benchmark-raw", "benchmark-processed"
KEY = f"{contract.INPUT_PREFIX}benchmark/events.jsonl"
# The untimed first invocation's object: the input's first WARM_BYTES.
WARM_KEY, WARM_BYTES = f"{contract.INPUT_PREFIX}warm-up/events.jsonl", 256 << 10
SEQUENCER = "0065A1B2C3D4E5F601"
REGION = "us-east-1"
KINDS = ("handler", "naive", "naive:rs")
# The bad lines, used in turn (a truncated object, a missing field, a string metric, a timestamp without
# offset, an array): the handler and the naive handlers each reject every one.
BAD_RECORDS = (
    b'{"id":"bad-json","timestamp":"2024-05-01T10:00:00Z","type":"click","value":1\n',
    b'{"id":"bad-no-type","timestamp":"2024-05-01T10:00:00Z","value":1}\n',
    b'{"id":"bad-metric","timestamp":"2024-05-01T10:00:00Z","type":"click","value":"12"}\n',
    b'{"id":"bad-timestamp","timestamp":"2024-05-01T10:00:00","type":"click","value":1}\n',
    b'["bad-array","2024-05-01T10:00:00Z"]\n',
)


def write_input(path: Path, size_bytes: int, rich: bool, bad_every: int) -> tuple[int, int]:
    """About ``size_bytes`` of JSON Lines at ``path``, every ``bad_every``-th line a bad record in turn;
    returns (valid, bad) line counts."""
    good = path.with_suffix(".good")
    generate(good, size_bytes, rich)
    valid = bad = 0
    with good.open("rb") as source, path.open("wb") as out:
        for number, line in enumerate(source, 1):
            if number % bad_every:
                out.write(line)
                valid += 1
            else:
                out.write(BAD_RECORDS[bad % len(BAD_RECORDS)])
                bad += 1
    good.unlink()
    return valid, bad


# --- the naive handler ---------------------------------------------------------------------------------


def naive_timestamp(value: Any) -> str:
    """RFC 3339 UTC with a Z, the obvious way: ``fromisoformat`` or ``fromtimestamp`` (milliseconds from
    1e11 on, as the contract says)."""
    if isinstance(value, bool):
        raise ValueError("timestamp is a boolean")
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value / 1000 if abs(value) >= 1e11 else value, UTC)
    else:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError(f"timestamp has no offset: {value}")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def naive_handler(
    event: dict[str, Any], s3: Any, validate: Callable[[Any], None], invalid: tuple[type[Exception], ...]
) -> dict[str, int]:
    """Ingestion as a first version would write it: the whole object in memory, one record at a time."""
    from handlers.config import load_ingestion
    from handlers.s3io import GZIP_LEVEL

    config = load_ingestion()
    counts = {"records_valid": 0, "records_quarantined": 0}
    for notification in event["Records"]:
        bucket = notification["s3"]["bucket"]["name"]
        key = unquote_plus(notification["s3"]["object"]["key"])
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        valid, rejected = [], []
        for number, line in enumerate(body.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
                validate(record)
                record["timestamp"] = naive_timestamp(record["timestamp"])
            except invalid as error:
                source = {"bucket": bucket, "key": key}
                rejected.append({"source": source, "line": number, "detail": str(error), "original": line})
                continue
            valid.append(record)
        rel = key.removeprefix(config.input_prefix)
        lines = "".join(json.dumps(record) + "\n" for record in valid).encode()
        s3.put_object(
            Bucket=config.common.dest_bucket,
            Key=f"{config.records_prefix}{rel}{contract.RECORDS_SUFFIX}",
            Body=gzip.compress(lines, compresslevel=GZIP_LEVEL),
        )
        if rejected:
            s3.put_object(
                Bucket=config.common.dest_bucket,
                Key=f"{config.quarantine_prefix}{rel}{contract.QUARANTINE_SUFFIX}",
                Body="".join(json.dumps(entry) + "\n" for entry in rejected).encode(),
            )
        counts["records_valid"] += len(valid)
        counts["records_quarantined"] += len(rejected)
    return counts


def naive_validator(library: str) -> tuple[Callable[[Any], None], tuple[type[Exception], ...]]:
    """The default schema's validator from ``library`` and the errors the naive handler rejects on."""
    from handlers.config import load_ingestion

    schema = dict(load_ingestion().record_schema)
    if library == "jsonschema":
        import jsonschema

        validator = jsonschema.validators.validator_for(schema)(schema)
        return validator.validate, (ValueError, jsonschema.ValidationError)
    import jsonschema_rs

    return jsonschema_rs.validator_for(schema).validate, (ValueError,)


# --- S3 --------------------------------------------------------------------------------------------------


class LocalS3:
    """The S3 calls both handlers make, on files under ``root`` (one directory per bucket)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / quote(key, safe="")

    def create_bucket(self, Bucket: str) -> None:
        (self.root / Bucket).mkdir(parents=True)

    def put_object(self, Bucket: str, Key: str, Body: Any, **_: Any) -> dict[str, Any]:
        with self._path(Bucket, Key).open("wb") as out:
            if isinstance(Body, bytes):
                out.write(Body)
            else:
                shutil.copyfileobj(Body, out, 8 << 20)
        return {}

    def upload_fileobj(self, Fileobj: Any, Bucket: str, Key: str, ExtraArgs: Any = None) -> None:
        self.put_object(Bucket=Bucket, Key=Key, Body=Fileobj)

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        path = self._path(Bucket, Key)
        return {"Body": path.open("rb"), "ContentLength": path.stat().st_size, "Metadata": {}}

    def copy_object(self, Bucket: str, Key: str, CopySource: dict[str, str], **_: Any) -> None:
        os.link(self._path(CopySource["Bucket"], CopySource["Key"]), self._path(Bucket, Key))

    def delete_object(self, Bucket: str, Key: str) -> None:
        self._path(Bucket, Key).unlink()

    def list_objects_v2(self, Bucket: str, Prefix: str) -> dict[str, Any]:
        names = sorted(unquote(p.name) for p in (self.root / Bucket).iterdir())
        return {"Contents": [{"Key": name} for name in names if name.startswith(Prefix)]}


@contextlib.contextmanager
def s3_world(kind: str, workdir: Path) -> Iterator[Any]:
    """An S3 client of ``kind`` with the raw and processed buckets (raw versioned where it can be)."""
    if kind == "local":
        s3 = LocalS3(workdir / "s3")
        for bucket in (RAW_BUCKET, PROCESSED_BUCKET):
            s3.create_bucket(Bucket=bucket)
        yield s3
        return
    import boto3
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ[name] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = REGION
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (RAW_BUCKET, PROCESSED_BUCKET):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=RAW_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield s3


def stored_lines(s3: Any, prefix: str, compressed: bool) -> int:
    """Lines of every processed object under ``prefix``."""
    total = 0
    for item in s3.list_objects_v2(Bucket=PROCESSED_BUCKET, Prefix=prefix).get("Contents", []):
        body = s3.get_object(Bucket=PROCESSED_BUCKET, Key=item["Key"])["Body"].read()
        total += (gzip.decompress(body) if compressed else body).count(b"\n")
    return total


class LambdaContext:
    """What the handler reads of Lambda's context: the request id and the time left of the timeout."""

    aws_request_id = "benchmark"

    def __init__(self, timeout_seconds: int) -> None:
        self._end = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self._end - time.monotonic()) * 1000)


def stage_settings() -> tuple[dict[str, str], int]:
    """The ingestion function's environment as the dev stack deploys it (Lambda's memory variable
    included), and its timeout."""
    from components.config import parse_config
    from components.environment import stage_environment
    from devtools.harness.declared import load_stack_config

    values = load_stack_config(STACK)
    namespace = "data-pipeline:"
    raw = {k.removeprefix(namespace): v for k, v in values.items() if k.startswith(namespace)}
    cfg = parse_config(raw, project="data-pipeline", stack=STACK, region=values.get("aws:region"))
    settings = cfg.stages[Stage.INGESTION]
    env = {k: str(v) for k, v in stage_environment(Stage.INGESTION, cfg, PROCESSED_BUCKET).items()}
    return env | {contract.LAMBDA_MEMORY_VARIABLE: str(settings.memory_mb)}, settings.timeout_seconds


# --- measurement -----------------------------------------------------------------------------------------


def put_event(s3: Any, key: str, body: Any) -> dict[str, Any]:
    """Put ``body`` at ``key`` in the raw bucket; the ObjectCreated event S3 sends for it."""
    size = len(body) if isinstance(body, bytes) else os.fstat(body.fileno()).st_size
    obj = {"key": quote(key), "size": size, "sequencer": SEQUENCER}
    if version := s3.put_object(Bucket=RAW_BUCKET, Key=key, Body=body).get("VersionId"):
        obj["versionId"] = version
    notification = {"bucket": {"name": RAW_BUCKET}, "object": obj}
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "awsRegion": REGION,
                "s3": notification,
            }
        ]
    }


def measure(kind: str, path: Path, s3_kind: str, timeout_seconds: int) -> dict[str, Any]:
    """One contender on one event, inside its own process (the function environment is already set)."""
    size = path.stat().st_size
    with tempfile.TemporaryDirectory(prefix="handler-bench-") as tmp, s3_world(s3_kind, Path(tmp)) as s3:
        with path.open("rb") as body:
            event = put_event(s3, KEY, body)
            body.seek(0)
            warm_event = put_event(s3, WARM_KEY, b"".join(body.readlines(WARM_BYTES)))
        if kind == "handler":
            import boto3

            from handlers import ingestion_handler

            boto3.client = lambda *_args, **_kwargs: s3  # the client the handler's runtime builds

            def work(event: dict[str, Any]) -> dict[str, int]:
                return ingestion_handler.handler(event, LambdaContext(timeout_seconds))["counts"]
        else:
            validate, invalid = naive_validator("jsonschema_rs" if kind == "naive:rs" else "jsonschema")

            def work(event: dict[str, Any]) -> dict[str, int]:
                return naive_handler(event, s3, validate, invalid)

        work(warm_event)  # a warm container: imports, config, compiled schema, client, first-call caches
        gc.collect()
        baseline = reset_peak()
        start, cpu_start = time.perf_counter(), time.process_time()
        counts = work(event)
        cpu, wall = time.process_time() - cpu_start, time.perf_counter() - start
        growth = peak_mb() - baseline
        rel = KEY.removeprefix(contract.INPUT_PREFIX)
        staged = s3.list_objects_v2(Bucket=PROCESSED_BUCKET, Prefix=contract.STAGING_PREFIX)
        written = {
            "valid": stored_lines(s3, contract.RECORDS_PREFIX + rel, compressed=True),
            "quarantined": stored_lines(s3, contract.QUARANTINE_PREFIX + rel, compressed=False),
            "staged": len(staged.get("Contents", [])),
        }
    if (counts["records_valid"], counts["records_quarantined"]) != (written["valid"], written["quarantined"]):
        raise SystemExit(f"{kind} counted {counts} but wrote {written}")
    return {
        "kind": kind,
        "mb": round(size / 1e6, 1),
        "valid": written["valid"],
        "quarantined": written["quarantined"],
        "staged_left": written["staged"],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "mb_per_cpu_s": round(size / 1e6 / cpu, 1),
        "rate": size / cpu,  # unrounded, for the ratios
        "peak_rss_growth_mb": round(growth, 1),
    }


def run(kind: str, path: Path, s3_kind: str, env: dict[str, str], timeout_seconds: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", kind, "--input", str(path), "--s3", s3_kind]
    command += ["--timeout", str(timeout_seconds)]
    out = subprocess.run(command, capture_output=True, text=True, check=False, env=os.environ | env)
    if out.returncode:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.splitlines()[-1])  # the handler's own log line comes before it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--records", choices=("small", "rich"), default="small", help="~155 B or ~505 B")
    parser.add_argument("--bad-every", type=int, default=1000, help="every n-th line is a bad record")
    parser.add_argument("--s3", choices=("local", "moto"), default="local")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.input, args.s3, args.timeout)))
        return
    env, timeout_seconds = stage_settings()
    with tempfile.TemporaryDirectory(prefix="handler-bench-input-") as tmp:
        path = Path(tmp, "events.jsonl")
        start = time.perf_counter()
        valid, bad = write_input(path, int(args.size_mb * 1e6), args.records == "rich", args.bad_every)
        mb = path.stat().st_size / 1e6
        print(f"generated {mb:.1f} MB ({valid} valid and {bad} bad {args.records} records)", end=" ")
        print(
            f"in {time.perf_counter() - start:.1f} s; S3: {args.s3}; the {STACK} stack's function environment"
        )
        rounds = [
            [run(kind, path, args.s3, env, timeout_seconds) for kind in KINDS] for _ in range(args.repeats)
        ]
    best = [min(tries, key=lambda r: r["cpu_s"]) for tries in zip(*rounds, strict=True)]
    for result in (r for tries in rounds for r in tries):
        if (result["valid"], result["quarantined"], result["staged_left"]) != (valid, bad, 0):
            raise SystemExit(f"{result['kind']} wrote {result}, not {valid} valid and {bad} quarantined")
    columns = ("kind", "mb", "valid", "quarantined", "wall_s", "cpu_s", "mb_per_cpu_s", "peak_rss_growth_mb")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in best:
        print("| " + " | ".join(str(r[c]) for c in columns) + " |")
    by = {r["kind"]: r for r in best}
    for naive in KINDS[1:]:
        ratio = by["handler"]["rate"] / by[naive]["rate"]
        target = " (target >= 3x)" if naive == "naive" else ""
        print(f"handler / {naive} throughput: {ratio:.2f}x{target}")
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    print(f"python {platform.python_version()}, {machine}, load average {load}")


if __name__ == "__main__":
    main()
