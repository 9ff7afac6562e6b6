"""Developer tools of data-pipeline: run the pipeline locally, print the plan, redrive a failure queue.

run      the declared pipeline on moto, each handler in a Lambda-like process (docs/local-run.md)
plan     the declared resources as a tree, like a preview, without AWS
redrive  re-invoke the events kept in a stage's failure queue (README.md, Operating)
replay   send a stage's existing input objects through it again (README.md, Replaying history)
preflight read-only checks of a stack's config against the real account, before `pulumi up`
         (devtools/ops/preflight/)
migrate  upgrade an analytics database you can reach to the schema this code needs (pulumi up does it
         inside the stack: components/migration.py)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from handlers.contract import FULL_VCPU_MEMORY_MB, STAGES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    run.add_argument(
        "--no-cpu-scaling",
        action="store_true",
        help="run handlers at this machine's full CPU speed: by default each invocation's CPU time is "
        f"scaled to the CPU share of its declared memory (one vCPU at {FULL_VCPU_MEMORY_MB:,} MB), "
        "reported beside the wall time, and an invocation whose scaled time passes the declared timeout "
        "fails with Sandbox.Timedout",
    )

    run.add_argument(
        "--replay",
        choices=[str(stage) for stage in STAGES],
        help="after the run, replay this stage's existing objects (python -m devtools replay, on moto)",
    )
    run.add_argument(
        "--replay-config",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="before the replay, change the stack config (e.g. aggregation.window=5m); repeatable",
    )
    run.add_argument(
        "--replay-quarantined",
        action="store_true",
        help="with --replay ingestion: only raw objects that have quarantine entries",
    )

    plan = commands.add_parser("plan", help="print the declared resources as a tree")
    plan.add_argument("--stack", default="dev")
    plan.add_argument(
        "--build-layer",
        dest="stub_layer",
        action="store_false",
        help="build the real layer (needs PyPI) instead of declaring a stub layer zip",
    )

    migrate = commands.add_parser(
        "migrate",
        help="upgrade an analytics database to the schema this code needs (Alembic upgrade head)",
        description="Run the Alembic revisions shipped in handlers/ against the database, under the same "
        "advisory lock as the migration `pulumi up` runs through the analytics function.",
    )
    migrate.add_argument(
        "--url", required=True, help="SQLAlchemy URL, e.g. postgresql+psycopg2://user@host/db"
    )

    commands.add_parser(
        "redrive", help="redrive a stage's failure queue (see --help of the subcommand)", add_help=False
    )
    commands.add_parser(
        "replay", help="replay a stage's existing objects (see --help of the subcommand)", add_help=False
    )
    commands.add_parser(
        "preflight",
        help="check a stack's config against the account before pulumi up (see --help of the subcommand)",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "redrive":
        from devtools.ops.redrive import main as redrive_main

        return redrive_main(argv[1:])
    if argv and argv[0] == "preflight":
        from devtools.ops.preflight import main as preflight_main

        return preflight_main(argv[1:])
    if argv and argv[0] == "replay":
        from devtools.ops.replay import main as replay_main

        return replay_main(argv[1:])
    args = _parser().parse_args(argv)
    from devtools.harness import StackEvaluationError
    from devtools.localrun.errors import LocalRunError
    from devtools.localrun.graph import GraphError
    from devtools.localrun.lambda_runtime import LambdaRuntimeError

    expected: tuple[type[Exception], ...] = (
        StackEvaluationError,
        GraphError,
        LambdaRuntimeError,
        LocalRunError,
    )
    try:
        from layer.build import LayerBuildError

        expected = (*expected, LayerBuildError)
    except ImportError:  # the layer package is absent: the run reports that when it needs the layer
        pass
    try:
        if args.command == "run":
            from devtools.localrun.command import main as run_main

            return run_main(args)
        if args.command == "migrate":
            return _migrate(args.url)
        from devtools.harness.plan import main as plan_main

        return plan_main(args)
    except expected as exc:
        # Known failures carry their own explanation; a traceback would only hide it.
        print(f"devtools {args.command}: {exc}", file=sys.stderr)
        return 2


def _migrate(url: str) -> int:
    from handlers import database
    from handlers.errors import PipelineError

    try:
        revision = database.migrate(url)
    except PipelineError as exc:
        print(f"devtools migrate: {exc}", file=sys.stderr)
        return 2
    print(f"the database is at revision {revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
