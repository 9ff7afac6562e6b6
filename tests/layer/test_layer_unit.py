"""The layer build without the network: pip is faked, everything after it (cleanup, checks, bytecode,
zip, cache) runs for real on a one-package "layer"."""

from __future__ import annotations

import hashlib
import marshal
import os
import re
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

import layer.build as build
from artifacts.reproducible_zip import write_zip
from layer.build import (
    LayerContentError,
    LayerSpec,
    LayerSpecError,
    LayerTooLargeError,
    build_layer,
    cache_key,
    check_size_budget,
    elf_machine,
    find_interpreter,
    pip_install_command,
    platform_tags,
)
from layer.content import requirement_pins
from tests.layer.support import DEMO_FILES, HOST_ARCHITECTURE, FakePip, refused_build

ROOT = Path(__file__).resolve().parents[2]
ELF_AARCH64 = b"\x7fELF\x02\x01\x01" + b"\x00" * 11 + (0xB7).to_bytes(2, "little") + b"\x00" * 44


def _names(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        return zf.namelist()


def _silent(_message: str) -> None:
    pass


# -- pure pieces -----------------------------------------------------------------------------------


def test_pip_installs_wheels_for_the_lambda_target_not_the_host(tmp_path: Path) -> None:
    # GIVEN an arm64 python3.12 spec
    spec = LayerSpec(runtime="python3.12", architecture="arm64")
    # WHEN the pip command is made
    command = pip_install_command(spec, tmp_path / "python")
    # THEN it asks for CPython 3.12 binary wheels for aarch64 manylinux, uncompiled, into the target
    assert command[1:4] == ["-m", "pip", "install"]
    assert "--only-binary=:all:" in command
    assert command[command.index("--implementation") + 1] == "cp"
    assert command[command.index("--python-version") + 1] == "3.12"
    assert command[command.index("--target") + 1] == str(tmp_path / "python")
    assert "--no-compile" in command
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms == list(platform_tags("arm64"))
    assert all(tag.endswith("_aarch64") for tag in platforms)


def test_boto3_is_installed_only_with_the_switch(tmp_path: Path) -> None:
    # GIVEN the default spec and the one with include_boto3
    default = pip_install_command(LayerSpec(), tmp_path)
    with_boto3 = pip_install_command(LayerSpec(include_boto3=True), tmp_path)
    # WHEN / THEN only the latter installs the boto3 pins, after the layer's own requirements
    assert str(build.BOTO3_REQUIREMENTS) not in default
    requirement_files = [with_boto3[i + 1] for i, arg in enumerate(with_boto3) if arg == "--requirement"]
    assert requirement_files == [str(build.DEFAULT_REQUIREMENTS), str(build.BOTO3_REQUIREMENTS)]


def test_platform_tags_cover_glibc_2_17_to_2_34_and_no_newer() -> None:
    # GIVEN Lambda's glibc 2.34 WHEN the x86_64 tags are listed
    tags = platform_tags("x86_64")
    # THEN the 2_28 tag (psycopg2-binary's aarch64 wheel carries only that) and 2014 are in, 2_35 is not
    assert tags[0] == "manylinux_2_34_x86_64"
    assert "manylinux_2_28_x86_64" in tags
    assert "manylinux_2_17_x86_64" in tags
    assert tags[-1] == "manylinux2014_x86_64"
    assert not any(re.match(r"manylinux_2_(3[5-9]|[4-9]\d)_", tag) for tag in tags)


def test_an_invalid_spec_reports_every_problem_at_once(tmp_path: Path) -> None:
    # GIVEN a spec with a bad runtime, architecture and requirements path
    # WHEN / THEN construction fails naming all three
    with pytest.raises(LayerSpecError) as error:
        LayerSpec(runtime="python2.7", architecture="sparc", requirements=tmp_path / "missing.txt")
    message = str(error.value)
    assert "python2.7" in message
    assert "sparc" in message
    assert "missing.txt" in message


@pytest.mark.parametrize(
    "change",
    [
        {"runtime": "python3.12"},
        {"architecture": "arm64"},
        {"include_boto3": True},
        {"compile_bytecode": False},
    ],
)
def test_the_cache_key_changes_with_each_spec_field(demo_spec: LayerSpec, change: dict) -> None:
    # GIVEN a spec and the same spec with one field changed
    base = replace(demo_spec, runtime="python3.13", architecture="x86_64")
    changed = replace(base, **change)
    # WHEN / THEN their keys differ
    assert cache_key(base, "3.13.0") != cache_key(changed, "3.13.0")


def test_the_cache_key_changes_with_requirements_bytes_and_compiler(demo_spec: LayerSpec) -> None:
    # GIVEN a key for the current requirements and compiler
    before = cache_key(demo_spec, "3.11.7")
    # WHEN the compiling interpreter differs, or the requirements file changes
    other_compiler = cache_key(demo_spec, "3.11.8")
    demo_spec.requirements.write_text("demo==1.1\n")
    other_requirements = cache_key(demo_spec, "3.11.7")
    # THEN each gives a different key, and the same inputs give the same key
    assert len({before, other_compiler, other_requirements}) == 3
    assert cache_key(demo_spec, "3.11.7") == other_requirements


def test_elf_machine_reads_the_header() -> None:
    # GIVEN this interpreter's binary (ELF for the host), an aarch64 header and a text file
    # WHEN / THEN the machine is read from e_machine, and non-ELF files give None
    assert elf_machine(Path(sys.executable).resolve()) == build.ARCHITECTURES[HOST_ARCHITECTURE]
    assert elf_machine(Path(build.__file__)) is None


def test_the_running_interpreter_is_found_for_its_own_version() -> None:
    # GIVEN the running interpreter's version WHEN looked up THEN it is this interpreter
    found = find_interpreter(f"{sys.version_info.major}.{sys.version_info.minor}")
    assert found == (sys.executable, ".".join(map(str, sys.version_info[:3])))


def test_boto3_switch_pins_the_same_boto3_as_the_tests() -> None:
    # GIVEN the layer's boto3 pins and the dev requirements
    layer_pins = requirement_pins([build.BOTO3_REQUIREMENTS])
    dev = (ROOT / "requirements-dev.txt").read_text()
    # WHEN / THEN boto3 is pinned to the version the tests run against
    assert f"boto3=={layer_pins['boto3']}" in dev


def test_an_unpinned_requirement_is_refused(demo_spec: LayerSpec) -> None:
    # GIVEN a requirements file with a range instead of a pin
    demo_spec.requirements.write_text("demo>=1.0\n")
    # WHEN the layer is built THEN the line is named and pip never runs
    pip = FakePip()
    with pytest.raises(LayerSpecError, match=r"requirements\.txt:1: 'demo>=1\.0' is not pinned"):
        build_layer(
            demo_spec, cache_dir=demo_spec.requirements.parent / "cache", runner=pip, progress=_silent
        )


# -- the build with a fake pip -----------------------------------------------------------------------


def test_host_artefacts_are_stripped(demo_spec: LayerSpec, tmp_path: Path) -> None:
    # GIVEN a pip that leaves INSTALLER, REQUESTED, direct_url.json, a console script and stale pycs
    # WHEN the layer is built
    archive = build_layer(demo_spec, cache_dir=tmp_path / "cache", runner=FakePip(), progress=_silent)
    # THEN none of them is in the zip, and RECORD lists only files that are
    names = _names(archive)
    assert "python/demo/__init__.py" in names
    for artefact in ("INSTALLER", "REQUESTED", "direct_url.json", "bin/demo", "cpython-39"):
        assert not any(artefact in name for name in names), artefact
    with zipfile.ZipFile(archive) as zf:
        record = zf.read("python/demo-1.0.dist-info/RECORD")
    assert record == (
        b"demo/__init__.py,sha256=x,80\ndemo-1.0.dist-info/METADATA,sha256=y,44\ndemo-1.0.dist-info/RECORD,,\n"
    )


def test_bytecode_is_unchecked_hash_and_points_at_opt_python(demo_spec: LayerSpec, tmp_path: Path) -> None:
    # GIVEN the running interpreter as the compiler
    archive = build_layer(demo_spec, cache_dir=tmp_path / "cache", runner=FakePip(), progress=_silent)
    tag = sys.implementation.cache_tag
    # WHEN the compiled module is read
    with zipfile.ZipFile(archive) as zf:
        pyc = zf.read(f"python/demo/__pycache__/__init__.{tag}.pyc")
    # THEN it is hash-based without source check (flags 0b01), and its code names /opt/python
    assert int.from_bytes(pyc[4:8], "little") == 0b01
    code = marshal.loads(pyc[16:])  # noqa: S302 - bytes this test just built, not untrusted input
    assert code.co_filename == "/opt/python/demo/__init__.py"


def test_two_builds_of_the_same_input_are_byte_identical(demo_spec: LayerSpec, tmp_path: Path) -> None:
    # GIVEN two separate caches
    # WHEN the same spec is built into each
    first = build_layer(demo_spec, cache_dir=tmp_path / "one", runner=FakePip(), progress=_silent)
    second = build_layer(demo_spec, cache_dir=tmp_path / "two", runner=FakePip(), progress=_silent)
    # THEN the zips are byte-identical
    assert hashlib.sha256(first.read_bytes()).hexdigest() == hashlib.sha256(second.read_bytes()).hexdigest()


def test_a_cache_hit_makes_no_pip_call(demo_spec: LayerSpec, tmp_path: Path) -> None:
    # GIVEN a layer already built into the cache
    first = build_layer(demo_spec, cache_dir=tmp_path / "cache", runner=FakePip(), progress=_silent)
    # WHEN it is asked for again
    pip = FakePip()
    messages: list[str] = []
    second = build_layer(demo_spec, cache_dir=tmp_path / "cache", runner=pip, progress=messages.append)
    # THEN the cached zip comes back without pip running, and the console says so
    assert second == first
    assert pip.pip_calls == []
    assert any("cached" in message for message in messages)


def test_an_interrupted_build_leaves_no_cache_entry(
    demo_spec: LayerSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a build interrupted (Ctrl-C) while the zip is being written
    def interrupted(dest: Path, entries: dict) -> Path:
        write_zip(dest, dict(list(entries.items())[:1]))
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "write_zip", interrupted)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        build_layer(demo_spec, cache_dir=cache, runner=FakePip(), progress=_silent)
    # WHEN the build runs again undisturbed
    assert list(cache.iterdir()) == []
    monkeypatch.undo()
    pip = FakePip()
    archive = build_layer(demo_spec, cache_dir=cache, runner=pip, progress=_silent)
    # THEN it really builds (no half entry was taken for a hit) and leaves only the zip
    assert len(pip.pip_calls) == 1
    assert list(cache.iterdir()) == [archive]


def test_a_failed_pip_explains_and_leaves_no_cache_entry(demo_spec: LayerSpec, tmp_path: Path) -> None:
    # GIVEN a pip that finds no wheel for the target
    pip = FakePip(returncode=1, stderr="ERROR: No matching distribution found for demo==1.0\n")
    cache = tmp_path / "cache"
    # WHEN the layer is built THEN it fails, and the message says what failed, why and what to do,
    # quoting pip; the cache stays empty
    message = refused_build(demo_spec, cache, pip)
    assert "pip could not install the layer's requirements" in message
    assert "no matching wheel" in message
    assert "What to do:" in message
    assert "No matching distribution found for demo==1.0" in message
    assert list(cache.iterdir()) == []


def test_a_pip_that_saw_no_versions_at_all_explains_what_to_do(demo_spec: LayerSpec, tmp_path: Path) -> None:
    # GIVEN a pip that saw no version of a requirement (an index that does not carry it, or unreachable)
    stderr = (
        "ERROR: Could not find a version that satisfies the requirement demo==1.0 (from versions: none)\n"
    )
    pip = FakePip(returncode=1, stderr=stderr)
    # WHEN the layer is built THEN it fails, and the message says why and what to do, quoting pip
    message = refused_build(demo_spec, tmp_path / "cache", pip)
    assert "pip saw no versions at all" in message
    assert "What to do: check that the package index is reachable" in message
    assert "(from versions: none)" in message


def test_c_headers_pip_files_under_this_interpreters_version_are_not_in_the_layer(
    demo_spec: LayerSpec, tmp_path: Path
) -> None:
    # GIVEN a pip that installs a package's C header under include/site/python<host version>
    files = {**DEMO_FILES, "include/site/python3.11/demo/demo.h": b"/* header */\n"}
    # WHEN the layer is built
    archive = build_layer(
        demo_spec, cache_dir=tmp_path / "cache", runner=FakePip(files=files), progress=_silent
    )
    # THEN the header is not in it, so the zip does not depend on which Python ran the build
    with zipfile.ZipFile(archive) as zipped:
        assert not [name for name in zipped.namelist() if "/include/" in name]


def test_an_unpinned_transitive_dependency_is_refused(demo_spec: LayerSpec, tmp_path: Path) -> None:
    # GIVEN a pip that also installs a dependency the requirements do not pin
    files = {
        **DEMO_FILES,
        "extra-2.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: Extra\nVersion: 2.0\n",
    }
    # WHEN / THEN the build names the pin to add
    with pytest.raises(LayerContentError, match=r"extra==2\.0"):
        build_layer(demo_spec, cache_dir=tmp_path / "cache", runner=FakePip(files), progress=_silent)


def test_a_shared_object_for_another_machine_is_refused(tmp_path: Path, demo_requirements: Path) -> None:
    # GIVEN an x86_64 build into which pip put an aarch64 extension
    spec = LayerSpec(runtime=build.RUNNING_RUNTIME, architecture="x86_64", requirements=demo_requirements)
    files = {**DEMO_FILES, "demo/_speedups.cpython-311-aarch64-linux-gnu.so": ELF_AARCH64}
    # WHEN / THEN the build refuses it, naming the file and its machine
    with pytest.raises(
        LayerContentError, match=r"demo/_speedups\.cpython-311-aarch64-linux-gnu\.so \(aarch64\)"
    ):
        build_layer(spec, cache_dir=tmp_path / "cache", runner=FakePip(files), progress=_silent)


def test_boto3_pulled_in_while_excluded_is_refused(demo_spec: LayerSpec, tmp_path: Path) -> None:
    # GIVEN a requirement that drags botocore in, with include_boto3 off
    demo_spec.requirements.write_text("demo==1.0\nbotocore==1.0\n")
    files = {
        **DEMO_FILES,
        "botocore-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: botocore\nVersion: 1.0\n",
    }
    # WHEN / THEN the build says the runtime provides it and how to switch
    with pytest.raises(LayerContentError, match=r"botocore ended up in the layer.*layer\.includeBoto3"):
        build_layer(demo_spec, cache_dir=tmp_path / "cache", runner=FakePip(files), progress=_silent)


def test_without_the_runtime_interpreter_the_layer_has_no_bytecode_and_says_so(
    demo_spec: LayerSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a machine without the runtime's interpreter
    monkeypatch.setattr(build, "find_interpreter", lambda _version: None)
    messages: list[str] = []
    # WHEN the layer is built
    archive = build_layer(demo_spec, cache_dir=tmp_path / "cache", runner=FakePip(), progress=messages.append)
    # THEN it holds no .pyc and the console explains the cold-start cost and the fix
    assert not any(name.endswith(".pyc") for name in _names(archive))
    assert any("no .pyc" in message and "install that Python" in message for message in messages)


def test_size_limits_are_enforced_zipped_and_unzipped_with_function_code(
    demo_spec: LayerSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a built layer and a function code zip
    archive = build_layer(demo_spec, cache_dir=tmp_path / "cache", runner=FakePip(), progress=_silent)
    function_zip = write_zip(tmp_path / "code.zip", {"handlers/__init__.py": b"x" * 1000})
    zipped, unzipped = check_size_budget(archive, function_zip)
    # WHEN the unzipped limit leaves room for the layer alone, or the zipped limit is below the zip
    monkeypatch.setattr(build, "MAX_UNZIPPED_BYTES", unzipped + 500)
    with pytest.raises(LayerTooLargeError, match="function code"):
        check_size_budget(archive, function_zip)
    monkeypatch.setattr(build, "MAX_UNZIPPED_BYTES", unzipped + 5000)
    monkeypatch.setattr(build, "MAX_ZIPPED_BYTES", zipped - 1)
    # THEN both are refused with what to do
    with pytest.raises(LayerTooLargeError, match=r"direct upload.*What to do"):
        check_size_budget(archive, function_zip)


def test_an_oversized_build_leaves_no_cache_entry(
    demo_spec: LayerSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a zipped limit the layer breaks
    monkeypatch.setattr(build, "MAX_ZIPPED_BYTES", 10)
    cache = tmp_path / "cache"
    # WHEN / THEN the build fails and nothing is cached
    with pytest.raises(LayerTooLargeError):
        build_layer(demo_spec, cache_dir=cache, runner=FakePip(), progress=_silent)
    assert list(cache.iterdir()) == []


def test_the_cli_reports_a_bad_runtime_as_an_error() -> None:
    # GIVEN an unsupported runtime WHEN the CLI runs THEN it exits 1 with the reason on stderr
    result = subprocess.run(
        [sys.executable, "-m", "layer.build", "--runtime", "python2.7"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "runtime 'python2.7' is not one of python3.12, python3.13" in result.stderr
    assert result.stdout == ""


def test_a_killed_builds_leftovers_are_removed_but_a_running_builds_are_not(
    demo_spec: LayerSpec, tmp_path: Path
) -> None:
    # GIVEN a work directory abandoned a day ago (SIGKILL) and one a concurrent build just made
    cache = tmp_path / "cache"
    abandoned = cache / ".building-old-abc"
    running = cache / ".building-new-def"
    for workdir in (abandoned, running):
        (workdir / "python").mkdir(parents=True)
    day_ago = time.time() - 24 * 3600
    os.utime(abandoned, (day_ago, day_ago))
    # WHEN a layer is built into that cache
    archive = build_layer(demo_spec, cache_dir=cache, runner=FakePip(), progress=_silent)
    # THEN the abandoned directory is gone and the running one untouched
    assert sorted(cache.iterdir()) == sorted([archive, running])


def test_the_cli_prints_only_the_zip_path_on_stdout(demo_spec: LayerSpec, tmp_path: Path) -> None:
    # GIVEN a layer already in a cache (so the CLI needs no pip)
    archive = build_layer(demo_spec, cache_dir=tmp_path / "cache", runner=FakePip(), progress=_silent)
    # WHEN the CLI is asked for the same layer
    arguments = ["--runtime", demo_spec.runtime, "--architecture", demo_spec.architecture]
    arguments += ["--requirements", str(demo_spec.requirements), "--cache-dir", str(tmp_path / "cache")]
    result = subprocess.run(
        [sys.executable, "-m", "layer.build", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    # THEN stdout is the path alone (scriptable), and the progress went to stderr
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{archive}\n"
    assert result.stderr.startswith("[layer] ")
    assert "cached" in result.stderr
