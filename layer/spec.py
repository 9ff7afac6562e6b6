"""What a layer is built for: the Lambda runtime, the architecture and the pinned requirements.

The layer is installed for the *function's* platform, not for the machine running Pulumi: the manylinux
tags here are the ones Lambda's glibc (2.34, Amazon Linux 2023) accepts for the stack's architecture.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from layer.errors import LayerSpecError

LAYER_DIR = Path(__file__).resolve().parent
PROJECT_DIR = LAYER_DIR.parent
DEFAULT_REQUIREMENTS = LAYER_DIR / "requirements.txt"
BOTO3_REQUIREMENTS = LAYER_DIR / "requirements-boto3.txt"

SUPPORTED_RUNTIMES = ("python3.12", "python3.13")
RUNNING_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
"""Accepted as well, so the layer can be import-tested by the interpreter running the build."""

ARCHITECTURES: Mapping[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}
"""Lambda's architecture name → the machine name in manylinux tags and ELF headers."""

LAMBDA_GLIBC_MINOR = 34
"""Amazon Linux 2023 (the python3.12 and python3.13 runtimes) ships glibc 2.34."""


@dataclass(frozen=True)
class LayerSpec:
    """What to build; every field is part of the cache key."""

    runtime: str = "python3.13"
    """Lambda runtime identifier, ``python3.12`` or ``python3.13`` (or the running interpreter's)."""
    architecture: str = "x86_64"
    """Lambda architecture, ``x86_64`` or ``arm64``."""
    include_boto3: bool = False
    """Pin boto3/botocore in the layer (``layer/requirements-boto3.txt``) instead of the runtime's."""
    requirements: Path = field(default=DEFAULT_REQUIREMENTS)
    """The pinned requirements file of the layer's content."""
    compile_bytecode: bool = True
    """Precompile .pyc when the runtime's interpreter is on this machine (off only to measure)."""

    def __post_init__(self) -> None:
        problems = []
        if self.runtime not in (*SUPPORTED_RUNTIMES, RUNNING_RUNTIME):
            problems.append(f"runtime {self.runtime!r} is not one of {', '.join(SUPPORTED_RUNTIMES)}")
        if self.architecture not in ARCHITECTURES:
            problems.append(f"architecture {self.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
        if not Path(self.requirements).is_file():
            problems.append(f"requirements file {self.requirements} does not exist")
        if problems:
            raise LayerSpecError("invalid layer spec: " + "; ".join(problems))
        object.__setattr__(self, "requirements", Path(self.requirements).resolve())

    @property
    def python_version(self) -> str:
        """``"3.13"`` for ``python3.13``."""
        return self.runtime.removeprefix("python")

    @property
    def machine(self) -> str:
        """``"aarch64"`` for ``arm64``."""
        return ARCHITECTURES[self.architecture]

    @property
    def requirement_files(self) -> tuple[Path, ...]:
        """The requirement files pip installs, in order."""
        return (self.requirements, BOTO3_REQUIREMENTS) if self.include_boto3 else (self.requirements,)


def platform_tags(architecture: str) -> tuple[str, ...]:
    """Every manylinux tag Lambda's glibc 2.34 runs, newest first (pip prefers earlier tags).

    pip does not expand ``manylinux_2_34`` to the older glibc versions it implies, so each is named:
    some pinned wheels carry only ``manylinux_2_28`` (psycopg2-binary on aarch64), most ``2_17``.
    ``manylinux2014`` lets pip add the legacy ``manylinux2010``/``manylinux1`` aliases itself.
    """
    machine = ARCHITECTURES[architecture]
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(LAMBDA_GLIBC_MINOR, 16, -1)]
    return (*tags, f"manylinux2014_{machine}")
