"""The local run's human summary: report lines read as a person expects."""

from __future__ import annotations

from types import SimpleNamespace

from devtools.localrun.cpu import cpu_factor
from devtools.localrun.report import _report_line, _time_rows
from devtools.localrun.results import StageStats
from handlers.contract import Stage


def test_report_line_shows_float_sums_without_binary_noise():
    # GIVEN a report whose sum of decimal prices carries binary floating-point noise
    report = {
        "database": "loaded",
        "window": "1h",
        "totals": {
            "groups": 25,
            "records": 70,
            "metrics": {"value": {"count": 70, "sum": 8749.189999999997, "min": 8.44, "max": 243.44}},
        },
    }
    # WHEN it is summarised THEN the sum reads as the decimal it stands for
    assert _report_line(report) == (
        "database loaded, window 1h, 25 group(s), 70 record(s); "
        "value count=70 sum=8749.19 min=8.44 max=243.44"
    )


def test_the_time_table_shows_the_scaled_time_beside_the_wall_time_and_the_timeouts():
    # GIVEN a stage at 512 MB that timed out once, and one run without CPU scaling
    scaled = StageStats(memory_mb=512, timeout_seconds=120, cpu_factor=cpu_factor(512), timed_out=1)
    scaled.add_time(wall_ms=1500, cpu_ms=1000, lambda_ms=3455, memory_mb=80)
    scaled.add_time(wall_ms=500, cpu_ms=200, lambda_ms=691, memory_mb=120)
    unscaled = StageStats(memory_mb=512, timeout_seconds=120)
    unscaled.add_time(wall_ms=1500, cpu_ms=1000, lambda_ms=None, memory_mb=80)
    # WHEN their rows are rendered
    result = SimpleNamespace(stages={Stage.INGESTION: scaled, Stage.PROCESSING: unscaled})
    rows = _time_rows(result)  # type: ignore[arg-type]
    # THEN the times add up, the longest invocation and the peak memory show, and "-" marks no scaling
    times = ["2.00", "1.20", "4.15", "3.46"]  # wall, CPU, Lambda, longest Lambda
    assert rows[0] == [Stage.INGESTION, "512", "120", "x3.46", *times, "no (1 timed out)", "120"]
    assert rows[1] == [Stage.PROCESSING, "512", "120", "-", "1.50", "1.00", "-", "-", "yes", "80"]
