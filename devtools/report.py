"""The human summary of a local run (``--json`` prints ``RunResult.to_json()`` instead)."""

from __future__ import annotations

import json
from typing import Any

from devtools.local_run import RunResult

_COLUMNS = (
    ("stage", None),
    ("invocations", "invocations"),
    ("retries", "retries"),
    ("records in", "RecordsRead"),
    ("valid", "RecordsValid"),
    ("quarantined", "RecordsQuarantined"),
    ("blank", "BlankLines"),
    ("objects written", "ObjectsWritten"),
    ("failures", "failure_queue"),
)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*(str(c) for c in row)) for row in rows]
    return ["  " + line.rstrip() for line in lines]


def _short(value: Any, width: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


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
        row = [stage]
        for _, attr in _COLUMNS[1:]:
            row.append(str(stats.metrics[attr] if attr in stats.metrics else getattr(stats, attr)))
        rows.append(row)
    out += _table([c for c, _ in _COLUMNS], rows)
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
        shown = {k: v for k, v in entry.items() if k != "key"}
        out.append(f"  {entry['key']}: {_short(shown)}")
    if len(result.quarantine) > max_rows:
        out.append(f"  … and {len(result.quarantine) - max_rows} more (see --json)")
    out.append("")
    out.append(f"Reports ({len(result.reports)})")
    for key, report in result.reports.items():
        out.append(f"  {key}: {_short(report, 160)}")
    out.append("")
    out.append(f"Database {result.database_url}")
    if not result.database:
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
