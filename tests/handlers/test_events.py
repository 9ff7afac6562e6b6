"""handlers.events: output keys within and past S3's key limit, and the keys of records/ parts."""

from __future__ import annotations

import pytest
from handler_support import PROPERTY
from hypothesis import given
from hypothesis import strategies as st

from handlers import contract
from handlers.errors import EventError
from handlers.events import MAX_KEY_BYTES, output_key, part_key, split_part, split_versioned, versioned_key


def test_an_output_key_within_the_limit_is_prefix_rel_suffix() -> None:
    assert (
        output_key(contract.RECORDS_PREFIX, "a/b c.jsonl", contract.RECORDS_SUFFIX)
        == f"{contract.RECORDS_PREFIX}a/b c.jsonl{contract.RECORDS_SUFFIX}"
    )


@PROPERTY
@given(st.text(min_size=1000, max_size=1100), st.text(min_size=0, max_size=40))
def test_an_output_key_past_the_limit_is_shortened_deterministically_and_distinctly(
    rel: str, tail: str
) -> None:
    # GIVEN a relative key that makes prefix + rel + suffix longer than S3 allows
    key = output_key(contract.QUARANTINE_PREFIX, rel + tail, contract.QUARANTINE_SUFFIX)
    # THEN the key fits, keeps the prefix, suffix and the start of rel, and names this rel alone
    assert len(key.encode()) <= MAX_KEY_BYTES
    assert key.startswith(contract.QUARANTINE_PREFIX + (rel + tail)[:100])
    assert key.endswith(contract.QUARANTINE_SUFFIX)
    assert output_key(contract.QUARANTINE_PREFIX, rel + tail, contract.QUARANTINE_SUFFIX) == key
    if len(f"{contract.QUARANTINE_PREFIX}{rel}{tail}{contract.QUARANTINE_SUFFIX}".encode()) > MAX_KEY_BYTES:
        assert output_key(contract.QUARANTINE_PREFIX, rel + tail + "x", contract.QUARANTINE_SUFFIX) != key


@PROPERTY
@given(
    st.text(min_size=1, max_size=1100).filter(lambda rel: not rel.startswith("/")),
    st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=24),
    st.integers(min_value=0, max_value=10**6),
)
def test_a_part_key_fits_and_splits_back_into_its_version_and_part(rel: str, tag: str, part: int) -> None:
    # GIVEN the key of one part of a raw version, for any key length up to past S3's limit
    key = part_key(contract.RECORDS_PREFIX, rel, tag, part, contract.RECORDS_SUFFIX)
    whole = versioned_key(contract.RECORDS_PREFIX, rel, tag, contract.RECORDS_SUFFIX)
    # THEN it fits, part 0 is the version's key itself, and every part names the same rel and tag
    assert len(key.encode()) <= MAX_KEY_BYTES
    assert (key == whole) == (part == 0)
    assert split_part(key, contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX) == (
        *split_versioned(whole, contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX),
        part,
    )


@pytest.mark.parametrize(
    "stem", ["ABC.p00000", "ABC.p1", "ABC.p0001", "ABC.px0001", "ABC.p00001x", "ABC.p-0001", "ABC.p"]
)
def test_a_part_marker_not_spelled_as_part_key_spells_it_is_refused(stem: str) -> None:
    with pytest.raises(EventError):
        split_part(
            f"{contract.RECORDS_PREFIX}a.jsonl/{stem}{contract.RECORDS_SUFFIX}",
            contract.RECORDS_PREFIX,
            contract.RECORDS_SUFFIX,
        )


def test_a_part_marker_in_the_name_is_not_a_part() -> None:
    key = f"{contract.RECORDS_PREFIX}x.p00001/ABC{contract.RECORDS_SUFFIX}"
    assert split_part(key, contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX) == ("x.p00001", "ABC", 0)
