"""handlers.s3io: the object read is held to the invocation's deadline when there is one."""

from __future__ import annotations

from typing import Any

import pytest
from handler_support import RAW, put

from handlers import contract, deadline
from handlers.contract import Stage
from handlers.errors import DeadlineError
from handlers.events import ObjectRef
from handlers.s3io import open_object, open_object_with_metadata


def ref_of(record: dict[str, Any]) -> ObjectRef:
    obj = record["s3"]["object"]
    return ObjectRef(
        RAW, f"{contract.INPUT_PREFIX}big.jsonl", obj.get("versionId"), obj["size"], obj["sequencer"]
    )


def drain(read: Any) -> bytes:
    return b"".join(iter(lambda: read(1 << 20), b""))


def test_without_a_budget_the_object_reads_whole(aws: Any) -> None:
    body = b"x" * (9 << 20)
    read = open_object(aws, ref_of(put(aws, RAW, f"{contract.INPUT_PREFIX}big.jsonl", body)))
    assert drain(read) == body


def test_a_read_past_the_deadline_stops_with_the_reason(aws: Any) -> None:
    body = b"x" * (9 << 20)
    ref = ref_of(put(aws, RAW, f"{contract.INPUT_PREFIX}big.jsonl", body))
    clock = iter(range(0, 10**6, 10)).__next__  # every look at the clock is 10 s later
    budget = deadline.Budget.start(Stage.INGESTION, contract.FULL_VCPU_MEMORY_MB, 30, clock)
    with deadline.guarding(budget):
        read, metadata = open_object_with_metadata(aws, ref)
    with pytest.raises(DeadlineError) as caught:
        drain(read)
    assert caught.value.size == len(body)  # the response's ContentLength
    assert metadata == {}
