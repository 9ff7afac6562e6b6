"""The reproducible zip writer: same content, same bytes, whatever the host did to the files."""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from pathlib import Path

import pytest

from artifacts.reproducible_zip import (
    FIXED_DATE_TIME,
    ZipInputError,
    write_zip,
    write_zip_from_tree,
    zip_bytes,
)


def _tree(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("X = 1\n")
    (root / "pkg" / "sub" / "mod.py").write_text("Y = 2\n")
    tool = root / "pkg" / "tool.sh"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o700)
    return root


def test_same_tree_with_different_mtimes_and_umask_gives_identical_bytes(tmp_path: Path) -> None:
    # GIVEN two copies of one tree whose files differ only in mtime and permission bits
    first = _tree(tmp_path / "a")
    second = _tree(tmp_path / "b")
    for path in (second / "pkg").rglob("*.py"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
        path.chmod(0o600)
    # WHEN both are zipped
    zip_a = write_zip_from_tree(tmp_path / "a.zip", first)
    zip_b = write_zip_from_tree(tmp_path / "b.zip", second)
    # THEN the archives are byte-identical
    assert hashlib.sha256(zip_a.read_bytes()).digest() == hashlib.sha256(zip_b.read_bytes()).digest()


def test_entries_are_sorted_dated_1980_and_have_fixed_modes(tmp_path: Path) -> None:
    # GIVEN a tree with an executable file
    root = _tree(tmp_path / "t")
    # WHEN it is zipped
    archive = write_zip_from_tree(tmp_path / "t.zip", root)
    # THEN entries are sorted, dated 1980-01-01, 0o644 or 0o755 for the executable, deflated
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names) == ["pkg/__init__.py", "pkg/sub/mod.py", "pkg/tool.sh"]
    assert {info.date_time for info in infos} == {FIXED_DATE_TIME}
    modes = {info.filename: stat.S_IMODE(info.external_attr >> 16) for info in infos}
    assert modes == {"pkg/__init__.py": 0o644, "pkg/sub/mod.py": 0o644, "pkg/tool.sh": 0o755}
    assert {info.compress_type for info in infos} == {zipfile.ZIP_DEFLATED}
    assert {info.extra for info in infos} == {b""}


def test_mapping_order_does_not_change_the_bytes() -> None:
    # GIVEN the same entries inserted in two orders
    forward = {"a.txt": b"1", "b/c.txt": b"2"}
    backward = {"b/c.txt": b"2", "a.txt": b"1"}
    # WHEN / THEN both zip to the same bytes
    assert zip_bytes(forward) == zip_bytes(backward)


@pytest.mark.parametrize("name", ["/abs.txt", "../up.txt", "a/../../b", "dir/", "win\\path.txt", ""])
def test_an_entry_name_escaping_the_root_is_rejected(name: str) -> None:
    # GIVEN an entry name that is not a relative POSIX file path
    # WHEN / THEN zipping it raises with the name in the message
    with pytest.raises(ZipInputError, match="invalid archive entry name"):
        zip_bytes({name: b"x"})


def test_a_failed_write_leaves_neither_destination_nor_temp_file(tmp_path: Path) -> None:
    # GIVEN an entry whose source file vanishes before it is read
    missing = tmp_path / "gone.txt"
    dest = tmp_path / "out" / "x.zip"
    # WHEN writing fails midway
    with pytest.raises(FileNotFoundError):
        write_zip(dest, {"ok.txt": b"fine", "zz.txt": missing})
    # THEN nothing is left in the destination directory
    assert list(dest.parent.iterdir()) == []
