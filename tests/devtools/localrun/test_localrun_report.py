"""The local run's human summary: report lines read as a person expects."""

from __future__ import annotations

from devtools.localrun.report import _report_line


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
