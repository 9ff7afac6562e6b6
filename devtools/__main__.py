"""``python -m devtools {run,plan,redrive}``.

run      the declared pipeline on moto, each handler in a Lambda-like process (docs/local-run.md)
plan     the declared resources as a tree, like a preview, without AWS
redrive  re-invoke the events kept in a stage's failure queue (docs/operating.md)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devtools", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run the whole pipeline locally on the given files",
        description="Evaluate the stack under Pulumi mocks, provision it on moto with IAM enforced, upload "
        "the files under the raw bucket's input prefix and run the chain until it is idle.",
    )
    run.add_argument("files", nargs="+", metavar="FILE_OR_DIR", help="input files; directories are walked")
    run.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml is used (default: dev)")
    run.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the analytics database (default: a fresh SQLite file under .local-run/)",
    )
    run.add_argument("--json", action="store_true", help="print the result as one JSON document on stdout")
    run.add_argument(
        "--duplicate-deliveries", action="store_true", help="deliver every S3 event twice (at-least-once)"
    )

    plan = commands.add_parser("plan", help="print the declared resources as a tree")
    plan.add_argument("--stack", default="dev")
    plan.add_argument(
        "--build-layer",
        dest="stub_layer",
        action="store_false",
        help="build the real layer (needs PyPI) instead of declaring a stub layer zip",
    )

    commands.add_parser(
        "redrive", help="redrive a stage's failure queue (see --help of the subcommand)", add_help=False
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "redrive":
        from devtools.redrive import main as redrive_main

        return redrive_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "run":
        from devtools.run import main as run_main

        return run_main(args)
    from devtools.plan import main as plan_main

    return plan_main(args)


if __name__ == "__main__":
    sys.exit(main())
