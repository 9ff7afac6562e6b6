"""What pip installed, made independent of this machine and checked against what Lambda needs.

The requirements must pin every package exactly (the layer is reproducible), boto3 stays out unless it
is asked for (the runtime provides it), and every shared object is built for the stack's architecture.
"""

from __future__ import annotations

import email.parser
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from layer.errors import LayerContentError, LayerSpecError
from layer.spec import LayerSpec

_ELF_MACHINES: Mapping[int, str] = {0x3E: "x86_64", 0xB7: "aarch64", 0x03: "i386", 0x28: "arm"}
_HOST_ARTEFACTS = frozenset({"INSTALLER", "REQUESTED", "direct_url.json"})
_BOTO3_FAMILY = frozenset({"boto3", "botocore", "s3transfer"})


def elf_machine(path: Path) -> str | None:
    """The machine an ELF file is built for (``x86_64``, ``aarch64``...), or None if not ELF."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    byteorder = "little" if header[5] == 1 else "big"
    code = int.from_bytes(header[18:20], byteorder)
    return _ELF_MACHINES.get(code, f"unknown(0x{code:x})")


def requirement_pins(paths: Iterable[Path]) -> dict[str, str]:
    """Canonical package name → pinned version, from requirement files that must pin every line."""
    pins: dict[str, str] = {}
    for path in paths:
        for number, raw in enumerate(path.read_text().splitlines(), start=1):
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            try:
                requirement = Requirement(line)
            except InvalidRequirement as exc:
                raise LayerSpecError(
                    f"{path}:{number}: {line!r} is not a requirement the layer build understands ({exc}); "
                    "list one pinned package per line, e.g. 'SQLAlchemy==2.0.58'"
                ) from exc
            specifiers = list(requirement.specifier)
            if len(specifiers) != 1 or specifiers[0].operator != "==":
                raise LayerSpecError(
                    f"{path}:{number}: {line!r} is not pinned; the layer must be reproducible, "
                    f"so pin an exact version ('{requirement.name}==X.Y.Z')"
                )
            pins[canonicalize_name(requirement.name)] = specifiers[0].version
    return pins


def _installed_distributions(site: Path) -> dict[str, str]:
    installed = {}
    for metadata in sorted(site.glob("*.dist-info/METADATA")):
        headers = email.parser.HeaderParser().parsestr(metadata.read_text(encoding="utf-8"))
        installed[canonicalize_name(headers["Name"])] = headers["Version"]
    return installed


def strip_host_artefacts(site: Path) -> None:
    """Remove what pip writes about *this* machine, so the tree depends on the wheels alone."""
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name == "__pycache__":
            shutil.rmtree(path)
        elif path.is_file() and (path.suffix in {".pyc", ".pyo"} or path.name in _HOST_ARTEFACTS):
            path.unlink()
    # Console scripts: their shebang names this machine's interpreter, and nothing on Lambda runs them.
    shutil.rmtree(site / "bin", ignore_errors=True)
    # C headers (greenlet's): pip files them under include/site/python<this interpreter's X.Y>, and
    # nothing on Lambda compiles against them.
    shutil.rmtree(site / "include", ignore_errors=True)
    for record in sorted(site.glob("*.dist-info/RECORD")):
        kept = [
            line
            for line in record.read_text(encoding="utf-8").splitlines()
            if line and (site / line.split(",", 1)[0]).is_file()
        ]
        record.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def check_content(spec: LayerSpec, site: Path) -> None:
    """Raise LayerContentError for unpinned packages, an unwanted boto3, or wrong-machine binaries."""
    problems = []
    pins = requirement_pins(spec.requirement_files)
    installed = _installed_distributions(site)
    unpinned = {name: version for name, version in installed.items() if pins.get(name) != version}
    if unpinned:
        lines = ", ".join(f"{name}=={version}" for name, version in sorted(unpinned.items()))
        problems.append(
            f"pip installed packages the requirements do not pin exactly: {lines} (a dependency of a pinned "
            f"package); add these pins to {spec.requirements.name} so the layer stays reproducible"
        )
    if not spec.include_boto3 and (leaked := sorted(_BOTO3_FAMILY & installed.keys())):
        problems.append(
            f"{', '.join(leaked)} ended up in the layer though include_boto3 is off: a requirement depends "
            "on it; the runtime provides boto3, so drop that requirement or set layer.includeBoto3"
        )
    wrong = []
    for path in sorted(site.rglob("*.so*")):
        machine = elf_machine(path) if path.is_file() else None
        if machine is not None and machine != spec.machine:
            wrong.append(f"{path.relative_to(site)} ({machine})")
    if wrong:
        problems.append(
            f"shared objects for the wrong machine (expected {spec.machine}): {', '.join(wrong[:5])}"
            f"{' ...' if len(wrong) > 5 else ''}"
        )
    if problems:
        raise LayerContentError("layer content check failed: " + "; ".join(problems))
