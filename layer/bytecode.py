"""Precompiled bytecode for the layer, identical from one build to the next.

Lambda mounts layers read-only under ``/opt``, so Python cannot cache bytecode there: without ``.pyc``
files every cold start compiles SQLAlchemy again. The runtime's own interpreter compiles, with
unchecked-hash pycs (no timestamps inside) and a fixed hash seed, so the bytes do not change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from layer.host import Progress, Runner

OPT_PYTHON = "/opt/python"
"""Where Lambda mounts the layer's ``python/``; the path recorded in the pycs for tracebacks."""


def _compile_env(environ: Mapping[str, str]) -> dict[str, str]:
    # A fixed hash seed fixes the order of set and frozenset constants in the marshalled code.
    env = {key: environ[key] for key in ("PATH", "HOME", "LANG", "SYSTEMROOT") if key in environ}
    env.update({"PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"})
    return env


def compile_site(site: Path, interpreter: str, runner: Runner, progress: Progress) -> None:
    """Write unchecked-hash pycs for ``site`` with ``interpreter``; a module that fails is only reported."""
    # -s strips the temporary build path and -p records /opt/python, the layer's path on Lambda:
    # tracebacks then point at real files and no host path ends up in the bytes. One process, files
    # in compileall's sorted order, so the interning that marshal records is the same every build.
    command = [interpreter, "-s", "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash"]
    command += ["-s", str(site), "-p", OPT_PYTHON, str(site)]
    result = runner(command, _compile_env(os.environ))
    if result.returncode != 0:
        failed = (result.stdout or result.stderr or "").strip().splitlines()[:6]
        progress(
            "warning: some modules did not compile (they will be compiled at import instead): "
            + " | ".join(failed)
        )
