"""S3 adapters: the only place the ingestion and processing stages talk to S3.

Outputs are spooled (memory up to ``SPOOL_MEMORY_BYTES``, then a temporary file in ``/tmp``) and
uploaded once complete, so a record stream of any length is written without holding it in memory and
no half-written object is ever visible. gzip output uses zlib's own gzip wrapper (``wbits=31``): its
header carries no file name and a zero mtime, so the bytes are a pure function of the lines.
"""

from __future__ import annotations

import hashlib
import tempfile
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from handlers.deadline import watched
from handlers.events import ObjectRef
from handlers.framing import CHUNK_BYTES, Read

SPOOL_MEMORY_BYTES = 8 << 20
BATCH_LINES = 2048
# Level 1: higher levels cost much more ingestion CPU for slightly smaller records/ (docs/benchmarks.md,
# "Figures behind the code").
GZIP_LEVEL = 1


class LineSpool:
    """Newline-terminated lines, optionally gzip-compressed, buffered for one upload."""

    def __init__(self, compress: bool, level: int = GZIP_LEVEL) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - closed in close()
        self._zip = zlib.compressobj(level, zlib.DEFLATED, 31) if compress else None
        self._batch: list[bytes] = []
        self.lines = 0

    def write(self, line: bytes) -> None:
        self._batch.append(line)
        self.lines += 1
        if len(self._batch) >= BATCH_LINES:
            self._flush()

    def write_lines(self, block: bytes, count: int) -> None:
        """``count`` lines at once, each already ending in a newline, after those written before."""
        self._flush()
        self.lines += count
        self._write(block)

    def _flush(self) -> None:
        if not self._batch:
            return
        data = b"\n".join(self._batch) + b"\n"
        self._batch.clear()
        self._write(data)

    def _write(self, data: bytes) -> None:
        self._file.write(self._zip.compress(data) if self._zip else data)

    def finish(self) -> Any:
        """The spooled file, complete and rewound."""
        self._flush()
        if self._zip:
            self._file.write(self._zip.flush())
            self._zip = None
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LineSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_object(s3: Any, ref: ObjectRef) -> Read:
    """A ``read(n)`` over the object version the event names (errors, 5xx included, propagate), held to the
    invocation's deadline when there is one (``handlers.deadline.watched``)."""
    return open_object_with_metadata(s3, ref)[0]


def open_object_with_metadata(s3: Any, ref: ObjectRef) -> tuple[Read, dict[str, str]]:
    """``open_object``, and the version's user metadata from the same GetObject response (names
    without ``x-amz-meta-``, lower case as S3 stores them)."""
    kwargs = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        kwargs["VersionId"] = ref.version_id
    response = s3.get_object(**kwargs)
    # Held to the invocation's time (handlers.deadline): an object that is read too slowly to finish
    # before the timeout fails early, with its reason, instead of at the timeout on every retry.
    read = watched(response["Body"].read, response.get("ContentLength"))
    return read, dict(response.get("Metadata") or {})


def hashed(read: Read) -> tuple[Read, Callable[[], str]]:
    """``read`` that also hashes what it returns, and a function that reads the rest and gives the
    SHA-256 of all the bytes (a reader may stop early, at a corrupt gzip member say)."""
    digest = hashlib.sha256()

    def read_hashing(size: int) -> bytes:
        chunk = read(size)
        digest.update(chunk)
        return chunk

    def finish() -> str:
        while read_hashing(CHUNK_BYTES):
            pass
        return digest.hexdigest()

    return read_hashing, finish


def upload(
    s3: Any, fileobj: Any, bucket: str, key: str, content_type: str, metadata: Mapping[str, str]
) -> None:
    """Upload a complete spooled output; large outputs go multipart through s3transfer."""
    s3.upload_fileobj(
        fileobj, bucket, key, ExtraArgs={"ContentType": content_type, "Metadata": dict(metadata)}
    )


def copy(s3: Any, bucket: str, source: str, key: str) -> None:
    """Copy ``source`` to ``key`` in ``bucket`` on the server side, bytes, content type and user metadata
    as they are (one CopyObject request: a source of at most 5 GB)."""
    s3.copy_object(
        Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": source}, MetadataDirective="COPY"
    )
