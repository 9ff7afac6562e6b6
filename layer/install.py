"""pip, told to install the layer's wheels for the Lambda target, and what its failures mean.

pip is given the Lambda runtime's Python version, CPython, and the manylinux tags Lambda's glibc accepts
for the stack's architecture, and is allowed binary wheels only. A layer built that way on a laptop
imports on Lambda; one built with a plain ``pip install`` fails there with
``No module named 'psycopg2._psycopg'``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from layer.errors import PackageIndexError
from layer.spec import LAMBDA_GLIBC_MINOR, LayerSpec, platform_tags

_INDEX_UNREACHABLE = re.compile(
    r"NewConnectionError|ConnectionError|Max retries exceeded|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|Connection refused|timed out|Could not fetch URL|"
    r"SSLError|ProxyError",
    re.IGNORECASE,
)


def pip_install_command(spec: LayerSpec, target: Path, python: str = sys.executable) -> list[str]:
    """The pip command that installs the layer's wheels for the Lambda target into ``target``."""
    command = [python, "-m", "pip", "install", "--target", str(target), "--only-binary=:all:"]
    command += ["--implementation", "cp", "--python-version", spec.python_version]
    for tag in platform_tags(spec.architecture):
        command += ["--platform", tag]
    command += ["--no-compile", "--no-input", "--disable-pip-version-check", "--progress-bar", "off"]
    for requirements in spec.requirement_files:
        command += ["--requirement", str(requirements)]
    return command


def pip_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with pip's prompts and version check off, and no bytecode written by pip itself."""
    env = dict(environ)
    env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


def pip_failure(spec: LayerSpec, result: subprocess.CompletedProcess[str]) -> PackageIndexError:
    """The error for a failed pip run: what failed, why (index unreachable, no wheel), what to do."""
    output = (result.stderr or "") + (result.stdout or "")
    tail = "\n".join(
        line for line in output.strip().splitlines()[-12:] if "is ignored: it is neither a file" not in line
    )
    target = f"{spec.runtime} on {spec.architecture} (manylinux, glibc <= 2.{LAMBDA_GLIBC_MINOR})"
    if _INDEX_UNREACHABLE.search(output):
        why = "the package index is unreachable"
        todo = (
            "connect to PyPI (or set PIP_INDEX_URL to a reachable mirror) and run again; or build on a "
            "connected machine with `python -m layer.build` and copy .build/layers/ here; or point the "
            "stack at a prebuilt zip with `pulumi config set data-pipeline:layer.archive <path>`"
        )
    elif "(from versions: none)" in output:
        why = (
            "pip saw no versions at all of a requirement: the package index is unreachable (with retries "
            "off pip does not say so) or it does not carry that package"
        )
        todo = (
            "check that the package index is reachable (PIP_INDEX_URL) and that every package in "
            f"{spec.requirements.name} publishes a binary wheel for {target} at the pinned version"
        )
    else:
        why = "pip found no matching wheel for the Lambda target or rejected a requirement"
        todo = (
            f"check that every package in {spec.requirements.name} publishes a binary wheel for {target} "
            "at the pinned version (the layer never builds from source, since the result must run on Lambda)"
        )
    return PackageIndexError(
        f"layer build failed: pip could not install the layer's requirements for {target}: {why}.\n"
        f"What to do: {todo}.\npip said (exit {result.returncode}):\n{tail}"
    )
