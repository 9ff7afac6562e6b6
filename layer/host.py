"""The build's edges on this machine: running commands, reporting progress, finding interpreters."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

Progress = Callable[[str], None]
Runner = Callable[[Sequence[str], Mapping[str, str]], "subprocess.CompletedProcess[str]"]


def run_command(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``env``, capturing its output; never raises on a non-zero exit."""
    return subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, check=False)


def stderr_progress(message: str) -> None:
    """The default progress: one ``[layer]`` line on stderr, so stdout stays the zip's path."""
    print(f"[layer] {message}", file=sys.stderr, flush=True)


def _probe_version(executable: str) -> str | None:
    try:
        result = subprocess.run(
            [executable, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def find_interpreter(python_version: str) -> tuple[str, str] | None:
    """``(executable, full version)`` of a CPython ``python_version`` on this machine, or None.

    Looks at the running interpreter, then pyenv's versions, then ``pythonX.Y`` on PATH; every
    candidate is run once, because a pyenv shim on PATH exists but may exit 127.
    """
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python_version == running:
        return sys.executable, ".".join(map(str, sys.version_info[:3]))
    pattern = _pyenv_root() / "versions" / f"{python_version}.*" / "bin" / f"python{python_version}"
    candidates = sorted(glob.glob(str(pattern)), reverse=True)
    on_path = shutil.which(f"python{python_version}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        version = _probe_version(candidate)
        if version and ".".join(version.split(".")[:2]) == python_version:
            return candidate, version
    return None
