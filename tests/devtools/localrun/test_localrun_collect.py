"""devtools.localrun.collect.check_parts: a raw version's records/ parts, as the local run finds them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools.localrun.collect import check_parts
from handlers import contract
from handlers.events import part_key

BUCKET = "processed"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put_part(s3: Any, part: int, metadata: dict[str, str]) -> str:
    key = part_key(contract.RECORDS_PREFIX, "a.jsonl", "ABC", part, contract.RECORDS_SUFFIX)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"", Metadata=metadata)
    return key


def counts(read: int, valid: int, quarantined: int = 0, blank: int = 0) -> dict[str, str]:
    return {
        "records-read": str(read),
        "records-valid": str(valid),
        "records-quarantined": str(quarantined),
        "blank-lines": str(blank),
    }


def check(s3: Any) -> list[str]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return [f.error_message for f in check_parts(s3, BUCKET, keys, contract.RECORDS_PREFIX, lambda _: None)]


def test_parts_that_add_up_pass(s3: Any) -> None:
    # GIVEN part 0 (3 read: 1 valid, 1 quarantined, 1 blank) counting three parts, and parts 1 and 2
    put_part(s3, 1, counts(2, 2) | {contract.PART_METADATA: "1"})
    put_part(s3, 2, counts(4, 4) | {contract.PART_METADATA: "2"})
    put_part(s3, 0, counts(3, 1, 1, 1) | {contract.PART_METADATA: "0", contract.PARTS_METADATA: "3"})
    # AND a left-over part past the count (an unreadable end's): not a failure
    put_part(s3, 3, counts(1, 1) | {contract.PART_METADATA: "3"})
    assert check(s3) == []


def test_a_missing_part_is_a_failure(s3: Any) -> None:
    put_part(s3, 0, counts(1, 1) | {contract.PARTS_METADATA: "3"})
    put_part(s3, 2, counts(4, 4))
    assert check(s3) == ["part 0 counts 3 parts, and [1] are not there"]


def test_parts_without_part_0_are_a_failure(s3: Any) -> None:
    put_part(s3, 1, counts(2, 2))
    assert check(s3) == ["parts [1] without part 0, which is written last"]


def test_parts_whose_counts_do_not_conserve_are_a_failure(s3: Any) -> None:
    put_part(s3, 0, counts(1, 1) | {contract.PARTS_METADATA: "2"})
    put_part(s3, 1, counts(2, 3))
    [problem] = check(s3)
    assert problem.startswith("the parts' counts do not add up")
