"""Byte-for-byte reproducible zip archives.

A zip built twice from the same content must hash the same, or Pulumi sees a new code archive on
every ``pulumi up`` and Lambda publishes a new version for nothing. Everything a zip normally takes
from the host is therefore fixed here: entry order (sorted), timestamps (1980-01-01, the zip epoch),
permission bits (0o644, or 0o755 when the source file is executable), owner/extra fields (none) and
the compression level. The archive is written to a temporary file beside the destination and renamed
into place, so a reader never sees half a zip and an interrupted write leaves nothing behind.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import BinaryIO

__all__ = [
    "COMPRESS_LEVEL",
    "FIXED_DATE_TIME",
    "ZipInputError",
    "iter_tree",
    "write_bytes_atomic",
    "write_zip",
    "write_zip_from_tree",
    "zip_bytes",
]

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
"""The earliest timestamp a zip can hold; any fixed value works, this one says "not a real date"."""

COMPRESS_LEVEL = 6
"""zlib's default trade-off; fixed so a change of Python default cannot change the bytes."""

_FILE_MODE = 0o644
_EXEC_MODE = 0o755
_UNIX = 3  # ZipInfo.create_system: makes unzip and Lambda honour the mode bits in external_attr.

Source = bytes | Path
"""An entry's content: the bytes themselves, or a file to read them from (its exec bit is kept)."""


class ZipInputError(ValueError):
    """An entry name that would escape the archive root or collide with another entry."""


def _check_arcname(name: str) -> str:
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or ".." in path.parts or name.endswith("/"):
        raise ZipInputError(f"invalid archive entry name {name!r}: must be a relative POSIX file path")
    return str(path)


def _zipinfo(name: str, executable: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    info.create_system = _UNIX
    info.external_attr = (stat.S_IFREG | (_EXEC_MODE if executable else _FILE_MODE)) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _write_entries(fileobj: BinaryIO, entries: Mapping[str, Source]) -> None:
    normalised: dict[str, Source] = {}
    for name, source in entries.items():
        clean = _check_arcname(name)
        if clean in normalised:
            raise ZipInputError(f"duplicate archive entry {clean!r}")
        normalised[clean] = source
    # No explicit directory entries: they would carry modes and timestamps of their own, and neither
    # zipimport nor Lambda's extraction needs them.
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(normalised):
            source = normalised[name]
            if isinstance(source, Path):
                executable = bool(source.stat().st_mode & stat.S_IXUSR)
                data = source.read_bytes()
            else:
                executable = False
                data = source
            archive.writestr(_zipinfo(name, executable), data, compresslevel=COMPRESS_LEVEL)


def zip_bytes(entries: Mapping[str, Source]) -> bytes:
    """The reproducible zip of ``entries`` (archive name → content) as bytes, for small archives."""
    buffer = io.BytesIO()
    _write_entries(buffer, entries)
    return buffer.getvalue()


def _atomic_write(dest: Path, write: Callable[[BinaryIO], None]) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0o600; an archive is not a secret.
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def write_bytes_atomic(dest: Path, data: bytes) -> Path:
    """Write ``data`` to ``dest`` through a temporary file and a rename; return ``dest``."""
    return _atomic_write(dest, lambda handle: handle.write(data))


def write_zip(dest: Path, entries: Mapping[str, Source]) -> Path:
    """Write the reproducible zip of ``entries`` to ``dest`` atomically and return ``dest``."""
    return _atomic_write(dest, lambda handle: _write_entries(handle, entries))


def iter_tree(
    root: Path, *, prefix: str = "", include: Callable[[PurePosixPath], bool] | None = None
) -> Iterator[tuple[str, Path]]:
    """Yield ``(archive name, file)`` for every regular file under ``root``.

    ``include`` gets each path relative to ``root`` (directories with a trailing part name, files
    with theirs) and prunes whatever it rejects; a rejected directory is not descended into.
    Symlinks are followed for files and not for directories, so a link cannot make a cycle.
    """

    def walk(directory: Path, rel: PurePosixPath) -> Iterator[tuple[str, Path]]:
        with os.scandir(directory) as scan:
            children = sorted(scan, key=lambda entry: entry.name)
        for child in children:
            child_rel = rel / child.name
            if include is not None and not include(child_rel):
                continue
            if child.is_dir(follow_symlinks=False):
                yield from walk(Path(child.path), child_rel)
            elif child.is_file():
                yield f"{prefix}{child_rel}", Path(child.path)

    yield from walk(root, PurePosixPath())


def write_zip_from_tree(
    dest: Path,
    root: Path,
    *,
    prefix: str = "",
    include: Callable[[PurePosixPath], bool] | None = None,
) -> Path:
    """Zip the files under ``root`` (named ``prefix`` + their relative path) reproducibly into ``dest``."""
    return write_zip(dest, dict(iter_tree(root, prefix=prefix, include=include)))
