"""benchmarks/parts.py still runs against the current core and prints every row (figures not checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_parts_benchmark_measures_one_part_and_parts() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "parts.py"),
            "--size-mb",
            "1",
            "--part-mb",
            "0.25",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = dict(re.findall(r"^(one part|parts of 0\.25 MiB)\s+(\d+)\s+[\d.]+", done.stdout, re.M))
    assert rows["one part"] == "1"
    assert int(rows["parts of 0.25 MiB"]) >= 4
    assert re.search(r"^CPU of parts / CPU of one part: [\d.]+$", done.stdout, re.M)
