"""What a local run observed (:class:`RunResult`), and the read-only look at the database it ends with."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from handlers.contract import METRIC_NAMES, RECORD_METRIC_NAMES, STAGE_METRIC_NAMES

METRICS = METRIC_NAMES
"""The metrics of the handlers' one EMF log line per invocation (docs/architecture.md), every stage's."""


def stage_metrics(stage: str) -> dict[str, str]:
    """``Counts`` field -> the EMF metric ``stage`` reports it as (records, or groups for analytics)."""
    return STAGE_METRIC_NAMES.get(stage, RECORD_METRIC_NAMES)


@dataclass
class StageStats:
    """What one stage did during the run."""

    invocations: int = 0  # handler invocations, retries and duplicate deliveries included
    succeeded: int = 0  # invocations that returned
    errors: int = 0  # invocations that raised (each retried or sent to the failure queue)
    retries: int = 0  # re-invocations after an error
    events: int = 0  # events delivered to the stage (duplicates included)
    failure_queue: int = 0  # on-failure records sent to the stage's failure queue
    cold_starts: int = 0  # containers started
    metrics: dict[str, int] = field(default_factory=dict)  # EMF totals, by the names the stage reports
    emf_lines: int = 0  # EMF documents seen in the logs
    # Time (devtools/localrun/cpu.py): wall and CPU time here, and the CPU time at the declared memory's
    # CPU share, summed over the invocations; the longest invocation at that share; the peak memory.
    memory_mb: int = 0  # declared
    timeout_seconds: int = 0  # declared
    cpu_factor: float | None = None  # seconds on Lambda per CPU second here; None: --no-cpu-scaling
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    lambda_seconds: float | None = None  # None without CPU scaling
    longest_lambda_seconds: float | None = None  # the longest single invocation, at the CPU share
    timed_out: int = 0  # invocations stopped at the timeout (Sandbox.Timedout)
    peak_memory_mb: int = 0  # the largest resident memory of a container of the stage

    def add_time(self, wall_ms: float, cpu_ms: float, lambda_ms: float | None, memory_mb: int) -> None:
        self.wall_seconds += wall_ms / 1000
        self.cpu_seconds += cpu_ms / 1000
        self.peak_memory_mb = max(self.peak_memory_mb, memory_mb)
        if lambda_ms is not None:
            self.lambda_seconds = (self.lambda_seconds or 0.0) + lambda_ms / 1000
            self.longest_lambda_seconds = max(self.longest_lambda_seconds or 0.0, lambda_ms / 1000)


@dataclass(frozen=True)
class Failure:
    """An event that ended in the failure queue (or could not even be sent there)."""

    stage: str
    key: str  # the object key of the event's first record
    error_type: str
    error_message: str
    attempts: int
    destination: str  # "failure-queue" or why the destination send failed


@dataclass(frozen=True)
class Upload:
    key: str  # object key in the raw bucket
    size: int  # bytes
    triggered: bool  # whether a notification matched it


@dataclass
class RunResult:
    """Everything the run observed; ``to_json()`` is what ``--json`` prints."""

    stack: str
    region: str
    interpreter: dict[str, Any]
    layer_archive: str
    database_url: str  # password hidden
    uploads: list[Upload]
    stages: dict[str, StageStats]
    failures: list[Failure]
    failure_queue_messages: dict[str, list[dict[str, Any]]]  # stage -> on-failure records
    objects: dict[str, list[str]]  # bucket -> keys
    reports: dict[str, Any]  # report key -> report document
    quarantine: list[dict[str, Any]]  # every quarantined entry, with its object key
    database: dict[str, Any]  # table -> {"rows": n, "columns": [...], "sample": [...]}
    database_error: str | None  # why the database could not be read, if it could not
    logs: dict[str, list[str]]  # stage -> log lines (the CloudWatch stream stand-in)
    elapsed_seconds: float

    @property
    def ok(self) -> bool:
        """Every event was processed; errors that a retry recovered from are shown, not failures."""
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["ok"] = self.ok
        del doc["logs"]
        return doc


def hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def read_database(url: str, sample_rows: int = 50) -> dict[str, Any]:
    """Every table of the database with its row count and first rows, read in a rolled-back transaction."""
    from sqlalchemy import MetaData, create_engine, func, select

    engine = create_engine(url)
    try:
        metadata = MetaData()
        with engine.connect() as conn:
            metadata.reflect(conn)
            tables: dict[str, Any] = {}
            for name, table in sorted(metadata.tables.items()):
                count = conn.execute(select(func.count()).select_from(table)).scalar_one()
                rows = conn.execute(select(table).limit(sample_rows)).mappings().all()
                tables[name] = {
                    "rows": count,
                    "columns": [c.name for c in table.columns],
                    "sample": [{k: _jsonable(v) for k, v in row.items()} for row in rows],
                }
            conn.rollback()
        return tables
    finally:
        engine.dispose()


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
