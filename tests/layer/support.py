"""Helpers of the layer tests: the host architecture, interpreter requirement, a fake pip, the real specs."""

from __future__ import annotations

import os
import platform
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from layer.build import (
    RUNNING_RUNTIME,
    LayerSpec,
    PackageIndexError,
    Runner,
    build_layer,
    find_interpreter,
    run_command,
)

HOST_ARCHITECTURE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower(), "x86_64"
)


def require_interpreter(python_version: str) -> str:
    """The executable of CPython ``python_version``; skip without it, but FAIL where CI demands it."""
    found = find_interpreter(python_version)
    if found is not None:
        return found[0]
    reason = f"no python{python_version} interpreter on this machine (pyenv versions/ or PATH)"
    if os.environ.get("CI") or os.environ.get("REQUIRE_ALL_RUNTIMES"):
        pytest.fail(f"{reason}, and CI/REQUIRE_ALL_RUNTIMES demands the import test for every runtime")
    pytest.skip(reason)


def extract(archive: Path, dest: Path) -> Path:
    """Unzip ``archive`` into ``dest`` and return the layer's ``python/`` directory."""
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(dest)
    return dest / "python"


# -- offline: a fake pip ---------------------------------------------------------------------------

DEMO_FILES: Mapping[str, bytes] = {
    # A set literal in a membership test compiles to a frozenset constant, whose marshalled order
    # follows string hashes: it catches a build that forgets to fix the hash seed.
    "demo/__init__.py": b'def known(word):\n    return word in {"alpha", "beta", "gamma", "delta"}\n',
    "demo/__pycache__/__init__.cpython-39.pyc": b"stale bytecode of another Python",
    "demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
    "demo-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    "demo-1.0.dist-info/INSTALLER": b"pip\n",
    "demo-1.0.dist-info/REQUESTED": b"",
    "demo-1.0.dist-info/direct_url.json": b'{"url": "file:///home/someone/demo"}',
    "demo-1.0.dist-info/RECORD": (
        b"demo/__init__.py,sha256=x,80\ndemo-1.0.dist-info/METADATA,sha256=y,44\n"
        b"demo-1.0.dist-info/INSTALLER,sha256=z,4\n../../bin/demo,sha256=w,20\n"
        b"demo-1.0.dist-info/RECORD,,\n"
    ),
    "bin/demo": b"#!/home/someone/.venv/bin/python\n",
}


class FakePip:
    """A runner whose pip "installs" ``files`` into --target; compileall and the rest run for real."""

    def __init__(self, files: Mapping[str, bytes] = DEMO_FILES, *, returncode: int = 0, stderr: str = ""):
        self.files = dict(files)
        self.returncode = returncode
        self.stderr = stderr
        self.pip_calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        if argv[1:3] != ["-m", "pip"]:
            return run_command(argv, env)
        self.pip_calls.append(argv)
        if self.returncode == 0:
            target = Path(argv[argv.index("--target") + 1])
            for name, data in self.files.items():
                path = target / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        return subprocess.CompletedProcess(argv, self.returncode, "", self.stderr)


def refused_build(spec: LayerSpec, cache: Path, runner: Runner = run_command) -> str:
    """The message of the PackageIndexError that building ``spec`` must raise (``runner`` runs pip)."""
    with pytest.raises(PackageIndexError) as error:
        build_layer(spec, cache_dir=cache, runner=runner, progress=lambda _m: None)
    return str(error.value)


# -- network: real builds, one per distinct layer, concurrently -------------------------------------

REAL_SPECS: Mapping[str, LayerSpec] = {
    # Only imports are tested on this one; the bytecode is tested on the Lambda runtimes' layers.
    "running": LayerSpec(runtime=RUNNING_RUNTIME, architecture=HOST_ARCHITECTURE, compile_bytecode=False),
    "python3.12": LayerSpec(runtime="python3.12", architecture="x86_64"),
    "python3.12-again": LayerSpec(runtime="python3.12", architecture="x86_64"),
    "python3.13": LayerSpec(runtime="python3.13", architecture="x86_64"),
    # Bytecode is irrelevant to which shared objects pip picks; skipping it keeps the tier fast.
    "arm64": LayerSpec(runtime="python3.13", architecture="arm64", compile_bytecode=False),
}


def build_in_background(spec: LayerSpec, cache_dir: Path) -> Path:
    """build_layer in a worker process at a lower priority: the tests that run meanwhile keep the CPU,
    and the build (a zip written in Python) takes no share of their interpreter's lock."""
    if os.nice(0) < 10:
        os.nice(10)
    return build_layer(spec, cache_dir=cache_dir, progress=lambda _message: None)
