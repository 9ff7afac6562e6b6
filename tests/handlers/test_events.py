"""handlers.events: output keys within and past S3's key limit."""

from __future__ import annotations

from handler_support import PROPERTY
from hypothesis import given
from hypothesis import strategies as st

from handlers.events import MAX_KEY_BYTES, output_key


def test_an_output_key_within_the_limit_is_prefix_rel_suffix() -> None:
    assert output_key("records/", "a/b c.jsonl", ".jsonl.gz") == "records/a/b c.jsonl.jsonl.gz"


@PROPERTY
@given(st.text(min_size=1000, max_size=1100), st.text(min_size=0, max_size=40))
def test_an_output_key_past_the_limit_is_shortened_deterministically_and_distinctly(
    rel: str, tail: str
) -> None:
    # GIVEN a relative key that makes prefix + rel + suffix longer than S3 allows
    key = output_key("quarantine/", rel + tail, ".jsonl")
    # THEN the key fits, keeps the prefix, suffix and the start of rel, and names this rel alone
    assert len(key.encode()) <= MAX_KEY_BYTES
    assert key.startswith("quarantine/" + (rel + tail)[:100])
    assert key.endswith(".jsonl")
    assert output_key("quarantine/", rel + tail, ".jsonl") == key
    if len(f"quarantine/{rel}{tail}.jsonl".encode()) > MAX_KEY_BYTES:
        assert output_key("quarantine/", rel + tail + "x", ".jsonl") != key
