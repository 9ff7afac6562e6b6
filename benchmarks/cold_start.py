"""Cold start of a handler entry point: the time ``import MODULE`` takes in fresh interpreters.

    python benchmarks/cold_start.py DIRECTORY MODULE [N]

DIRECTORY holds the ``handlers`` package to measure (the working tree, or an earlier commit's
``git archive REV handlers | tar -x -C DIR``). Prints the median and the minimum over N interpreters of
the import alone and of the import after boto3 (the Lambda runtime's, the same for every stage).
Figures: docs/benchmarks.md, "Processing cold start".
"""

from __future__ import annotations

import statistics
import subprocess
import sys

CODE = "import time{pre}; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"


def main() -> None:
    directory, module = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 21
    for label, pre in (("whole import", ""), ("after boto3", "; import boto3")):
        runs = [
            float(
                subprocess.run(
                    [sys.executable, "-c", CODE.format(pre=pre, module=module)],
                    cwd=directory,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            for _ in range(n)
        ]
        print(f"{module} {label}: median {statistics.median(runs):.1f} ms (min {min(runs):.1f}, n={n})")


if __name__ == "__main__":
    main()
