"""The input of a local run: the given files, and their upload under the raw bucket's input prefix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from devtools.localrun.emulator import AwsEmulator
from devtools.localrun.errors import LocalRunError
from devtools.localrun.results import Upload
from devtools.localrun.spec import PipelineSpec


def collect_uploads(files: Sequence[Path]) -> list[tuple[Path, str]]:
    """(path, key relative to the input prefix): a directory's files keep their path below it."""
    found: list[tuple[Path, str]] = []
    for given in files:
        path = Path(given)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                found.append((child, PurePosixPath(*rel.parts).as_posix()))
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise LocalRunError(f"{path}: no such file or directory")
    if not found:
        raise LocalRunError("nothing to upload: the given paths hold no files")
    return found


def upload(
    aws: AwsEmulator, spec: PipelineSpec, uploads: list[tuple[Path, str]], echo: Callable[[str], None]
) -> list[Upload]:
    """Put each file into the raw bucket (as the admin), which sets the chain off."""
    s3 = aws.client("s3")
    bucket, prefix = spec.input_bucket, spec.input_prefix
    raw = spec.bucket(bucket)
    done = []
    for path, rel in uploads:
        key = f"{prefix}{rel}"
        s3.upload_file(str(path), bucket, key)
        # From the declared filters: counting deliveries would also count later stages' events.
        triggered = any(key.startswith(n.prefix) and key.endswith(n.suffix) for n in raw.notifications)
        done.append(Upload(key=key, size=path.stat().st_size, triggered=triggered))
        echo(f"uploaded s3://{bucket}/{key}" + ("" if triggered else "  (matches no notification)"))
    return done
