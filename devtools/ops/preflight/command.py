"""`python -m devtools preflight`: the command line, wired to boto3 and the stack's config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from components.config import ConfigError
from devtools.ops.preflight.checks import preflight
from devtools.ops.preflight.stack_config import load


def _package_doc() -> str | None:
    # The package's docstring is the full description of the checks; imported late, since the package
    # imports this module.
    from devtools.ops import preflight as package

    return package.__doc__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools preflight",
        description=_package_doc(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stack", required=True, help="the stack whose config is checked")
    parser.add_argument("--region", help="default: the stack's aws:region")
    parser.add_argument("--profile", help="AWS profile (default: the default credential chain)")
    args = parser.parse_args(argv)
    import boto3

    try:
        cfg, region = load(args.stack, args.region)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    findings = preflight(cfg, session, region)
    for finding in findings:
        print(f"{'ok  ' if finding.ok else 'FAIL'} {finding.key}: {finding.message}")
    failed = [f for f in findings if not f.ok]
    print(f"\n{len(failed)} problem{'s' * (len(failed) != 1)} before `pulumi up --stack {args.stack}`")
    return 1 if failed else 0
