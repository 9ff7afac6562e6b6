"""The ingestion handler on moto staging its records/ parts k >= 1 (``contract.STAGING_PREFIX``) until
the whole raw object is read: what it releases is what it staged, byte for byte and with the same
metadata, and a version of one part stages nothing."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from handler_support import PROCESSED, RAW, event_of, jsonl, keys, put, record, records_of

from handlers import contract
from handlers import ingestion_handler as ingestion
from handlers.contract import Env
from handlers.events import split_part

PART_BYTES = 300


@pytest.fixture
def uploads(
    ingestion_env: Any, stage_env: pytest.MonkeyPatch
) -> dict[str, tuple[bytes, str, dict[str, str]]]:
    """Every upload the handler makes, by key: its bytes, content type and user metadata."""
    seen: dict[str, tuple[bytes, str, dict[str, str]]] = {}
    real = ingestion.upload

    def upload(s3: Any, fileobj: Any, bucket: str, key: str, content_type: str, metadata: Any) -> None:
        seen[key] = (fileobj.read(), content_type, dict(metadata))
        fileobj.seek(0)
        real(s3, fileobj, bucket, key, content_type, metadata)

    stage_env.setattr(ingestion, "upload", upload)
    stage_env.setenv(Env.RECORDS_PART_BYTES, str(PART_BYTES))
    return seen


def _part(key: str) -> int:
    return split_part(key, contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX)[2]


def test_released_parts_are_the_staged_bytes_and_metadata_and_nothing_stays_staged(
    ingestion_env: Any, uploads: dict[str, tuple[bytes, str, dict[str, str]]]
) -> None:
    # GIVEN a version of several parts
    ref = put(
        ingestion_env, RAW, f"{contract.INPUT_PREFIX}staged.jsonl", jsonl(*(record(n) for n in range(20)))
    )
    # WHEN it is ingested
    written = ingestion.handler(event_of(ref), None)["objects"][0]["written"]
    # THEN each part k >= 1 was uploaded under the staging prefix only, never at its records/ key
    later = [key for key in written if _part(key)]
    assert len(later) > 1
    assert not set(later) & set(uploads)
    assert {key for key in uploads if not key.startswith(contract.STAGING_PREFIX)} == {records_of(ref)}
    staged = {
        int(key.removesuffix(contract.RECORDS_SUFFIX)[-contract.PART_DIGITS :]): key
        for key in uploads
        if key.startswith(contract.STAGING_PREFIX)
    }
    assert sorted(staged) == sorted(_part(key) for key in later)
    # AND its records/ object has the staged bytes, content type and metadata, as a direct upload gave
    for key in later:
        got = ingestion_env.get_object(Bucket=PROCESSED, Key=key)
        assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == uploads[staged[_part(key)]]
    # AND no staged object is left
    assert [key for key in keys(ingestion_env, PROCESSED) if key.startswith(contract.STAGING_PREFIX)] == []


def test_a_version_of_one_part_stages_nothing(
    ingestion_env: Any, uploads: dict[str, tuple[bytes, str, dict[str, str]]]
) -> None:
    # GIVEN a version within one part
    ref = put(ingestion_env, RAW, f"{contract.INPUT_PREFIX}small.jsonl", jsonl(record(1)))
    # WHEN it is ingested
    written = ingestion.handler(event_of(ref), None)["objects"][0]["written"]
    # THEN its one records/ object was uploaded directly at its key, and nothing else was
    assert written == [records_of(ref)]
    assert list(uploads) == [records_of(ref)]


def test_a_failed_copy_raises_and_writes_no_part_0(
    ingestion_env: Any, uploads: dict[str, tuple[bytes, str, dict[str, str]]], stage_env: pytest.MonkeyPatch
) -> None:
    # GIVEN a version of several parts, and a processed bucket that refuses the release's copies
    ref = put(
        ingestion_env, RAW, f"{contract.INPUT_PREFIX}refused.jsonl", jsonl(*(record(n) for n in range(20)))
    )
    stage_env.setattr(
        ingestion,
        "copy",
        lambda s3, bucket, source, key: s3.copy_object(
            Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": source + "-missing"}
        ),
    )
    # WHEN it is ingested THEN the error is S3's, and the version's part 0 is not written
    with pytest.raises(ClientError) as raised:
        ingestion.handler(event_of(ref), None)
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"
    assert records_of(ref) not in keys(ingestion_env, PROCESSED)
