"""``python -m devtools.harness``: evaluate a stack under mocks and list what it declares, or time it.

python -m devtools.harness --stack dev --timing --stub-layer
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from devtools.harness.declared import evaluate_stack, make_stub_layer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.harness", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument(
        "--timing", action="store_true", help="evaluate several times and print the wall times"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--stub-layer", action="store_true", help="use a tiny layer zip instead of building it"
    )
    parser.add_argument("--json", action="store_true", help="print the resources and outputs as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"layer": {"archive": str(make_stub_layer(Path(tmp)))}} if args.stub_layer else {}
        if args.timing:
            t0 = time.perf_counter()
            import pulumi_aws  # noqa: F401  (import cost reported separately)
            import pulumi_random  # noqa: F401

            print(f"import pulumi, pulumi_aws, pulumi_random: {time.perf_counter() - t0:.2f} s")
            times = []
            for _ in range(args.runs):
                times.append(evaluate_stack(args.stack, overrides).seconds)
            first, rest = times[0], sorted(times[1:])
            print(f"stack {args.stack}: first evaluation {first:.2f} s (includes importing the components)")
            if rest:
                print(
                    f"stack {args.stack}: next {len(rest)} evaluations min {rest[0]:.2f} s, "
                    f"median {rest[len(rest) // 2]:.2f} s, max {rest[-1]:.2f} s"
                )
            return 0
        declared = evaluate_stack(args.stack, overrides)
        if args.json:
            doc = {
                "resources": [{"type": r.type, "name": r.name, "urn": r.urn} for r in declared.resources],
                "outputs": declared.outputs,
            }
            print(json.dumps(doc, indent=2, default=str))
        else:
            for r in declared.resources:
                print(f"{r.type:55} {r.name}")
            print(json.dumps(declared.outputs, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
