"""The human summary of a local run (``--json`` prints ``RunResult.to_json()`` instead)."""

from __future__ import annotations

import json
from typing import Any

from devtools.localrun.results import RunResult, stage_metrics
from handlers.contract import FULL_VCPU_MEMORY_MB, GROUP_METRIC_NAMES, RECORD_METRIC_NAMES

# (header, StageStats attribute or Counts field): a Counts field is shown under the EMF metric the stage
# reports it as, so analytics shows groups where the other stages show records.
_COLUMNS = (
    ("stage", None),
    ("invocations", "invocations"),
    ("errors", "errors"),
    ("retries", "retries"),
    ("counts", None),
    ("in", "records_read"),
    ("valid / loaded", "records_valid"),
    ("quarantined / rejected", "records_quarantined"),
    ("blank", "blank_lines"),
    ("objects written", "objects_written"),
    ("to failure queue", "failure_queue"),
)
_UNITS = {RECORD_METRIC_NAMES["records_read"]: "records", GROUP_METRIC_NAMES["records_read"]: "groups"}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*(str(c) for c in row)) for row in rows]
    return ["  " + line.rstrip() for line in lines]


def _short(value: Any, width: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _number(value: Any) -> Any:
    """A float as a person reads it: a sum of decimal prices is 8749.19, not 8749.189999999997."""
    return f"{value:.12g}" if isinstance(value, float) else value


def _report_line(report: Any) -> str:
    try:
        totals = report["totals"]
        metrics = ", ".join(
            f"{name} count={m.get('count')} "
            + " ".join(f"{stat}={_number(m.get(stat))}" for stat in ("sum", "min", "max"))
            for name, m in totals["metrics"].items()
        )
        return (
            f"database {report['database']}, window {report['window']}, {totals['groups']} group(s), "
            f"{totals['records']} record(s); {metrics}"
        )
    except (KeyError, TypeError, AttributeError):
        return _short(report, 160)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _time_rows(result: RunResult) -> list[list[str]]:
    """Per stage: the declared memory and timeout, the CPU share, and the times (devtools/localrun/cpu.py)."""
    rows = []
    for stage, stats in result.stages.items():
        fits = f"no ({stats.timed_out} timed out)" if stats.timed_out else "yes"
        rows.append(
            [
                stage,
                str(stats.memory_mb),
                str(stats.timeout_seconds),
                "-" if stats.cpu_factor is None else f"x{stats.cpu_factor:.2f}",
                _seconds(stats.wall_seconds),
                _seconds(stats.cpu_seconds),
                _seconds(stats.lambda_seconds),
                _seconds(stats.longest_lambda_seconds),
                fits,
                str(stats.peak_memory_mb),
            ]
        )
    return rows


_TIME_HEADER = [
    "stage",
    "memory MB",
    "timeout s",
    "CPU scale",
    "wall s",
    "CPU s",
    "Lambda s",
    "longest Lambda s",
    "within timeout",
    "peak MB",
]


def render_text(result: RunResult, max_rows: int = 10) -> str:
    out: list[str] = []
    interp = result.interpreter
    out.append(
        f"Local run of stack {result.stack!r} ({result.region}) in {result.elapsed_seconds:.1f} s; "
        f"handlers ran on {interp['runtime']} ({interp['path']})"
        + ("" if interp["matchesStackRuntime"] else ", standing in for the stack's runtime")
    )
    unmatched = [u.key for u in result.uploads if not u.triggered]
    out.append(
        f"Uploaded {len(result.uploads)} object(s)"
        + (f"; {len(unmatched)} matched no notification: {', '.join(unmatched)}" if unmatched else "")
    )
    out.append("")
    out.append("Per stage")
    rows = []
    for stage, stats in result.stages.items():
        names = stage_metrics(stage)
        row = [stage]
        for header, attr in _COLUMNS[1:]:
            if attr is None:
                row.append(_UNITS.get(names["records_read"], header))
            elif attr in names:
                row.append(str(stats.metrics.get(names[attr], 0)))
            else:
                row.append(str(getattr(stats, attr)))
        rows.append(row)
    out += _table([c for c, _ in _COLUMNS], rows)
    out.append("")
    out.append(
        f"Time per stage (Lambda s: CPU time at the declared memory's CPU share, 1 vCPU per "
        f"{FULL_VCPU_MEMORY_MB:,} MB; "
        "waits for S3 or the database not included)"
    )
    out += _table(_TIME_HEADER, _time_rows(result))
    out.append("")
    if result.failures:
        out.append(f"FAILED events ({len(result.failures)}):")
        for f in result.failures:
            out.append(f"  [{f.stage}] {f.key}: {f.error_type}: {_short(f.error_message, 160)}")
            out.append(f"      after {f.attempts} attempt(s) -> {f.destination}")
    else:
        out.append("No failed events: every failure queue is empty.")
    out.append("")
    out.append(f"Quarantined records ({len(result.quarantine)})")
    for entry in result.quarantine[:max_rows]:
        source = entry.get("source", {})
        where = f"{source.get('key', entry['key'])} #{entry.get('line', '?')}" if source else entry["key"]
        out.append(f"  {where}: {entry.get('reason', '?')}: {_short(entry.get('detail', entry), 90)}")
    if len(result.quarantine) > max_rows:
        out.append(f"  … and {len(result.quarantine) - max_rows} more (see --json)")
    out.append("")
    out.append(f"Reports ({len(result.reports)})")
    for key, report in result.reports.items():
        out.append(f"  {key}: {_report_line(report)}")
    out.append("")
    out.append(f"Database {result.database_url}")
    if result.database_error:
        out.append(f"  could not be read: {result.database_error}")
    elif not result.database:
        out.append("  (no tables)")
    for name, table in result.database.items():
        out.append(f"  table {name}: {table['rows']} row(s)")
        sample = table["sample"][:max_rows]
        if sample:
            header = list(table["columns"])
            out += [
                "  " + line
                for line in _table(header, [[_short(r.get(c), 32) for c in header] for r in sample])
            ]
            if table["rows"] > len(sample):
                out.append(f"      … {table['rows'] - len(sample)} more row(s)")
    out.append("")
    out.append("Result: OK" if result.ok else "Result: FAILED (see the failed events above)")
    return "\n".join(out)
