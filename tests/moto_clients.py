"""boto3 clients shared by the tests that run on moto's in-process mock (``mock_aws``).

moto intercepts at the botocore layer and keeps its state in its backends, not in clients, so a client
built under one test's mock serves the next test's fresh mock alike. Building one costs 0.05-0.4 s (the
service model, the endpoint rules, a class with a method per operation), and a cold start of each stage
builds its clients again: sharing them is most of a moto test's set-up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

_CLIENTS: dict[tuple[Any, ...], Any] = {}
fresh_client = boto3.client
"""boto3's own ``client``, a new client each call, even where a test has patched ``boto3.client``."""
# What a client reads from the environment when it is built; a client built under other values is another.
_ENVIRONMENT = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
)


def shared_client(service: str, *args: Any, **kwargs: Any) -> Any:
    """``boto3.client(service, *args, **kwargs)``, built once per arguments and AWS environment.

    Never for a client a test stubs (botocore's ``Stubber`` stays on the client it activated on)."""
    key = (service, args, tuple(sorted(kwargs.items())), tuple(os.environ.get(n) for n in _ENVIRONMENT))
    try:
        client = _CLIENTS.get(key)
    except TypeError:  # an unhashable argument: nothing to share it by
        return fresh_client(service, *args, **kwargs)
    if client is None:
        client = _CLIENTS[key] = fresh_client(service, *args, **kwargs)
    return client


@contextmanager
def mocked_aws(patch: pytest.MonkeyPatch, region: str, **environment: str) -> Iterator[None]:
    """moto's in-process AWS: fake credentials, ``region`` (and ``environment``) set, no profile or
    endpoint of the developer's shell, and boto3's clients shared (``shared_client``)."""
    fake = dict.fromkeys(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"), "testing")
    for name, value in {**fake, "AWS_DEFAULT_REGION": region, **environment}.items():
        patch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        patch.delenv(name, raising=False)
    patch.setattr(boto3, "client", shared_client)
    with mock_aws():
        yield


def create_chain_buckets(s3: Any, raw: str, processed: str, analytics: str) -> None:
    """The pipeline's three buckets, the raw one versioned as the stack makes it."""
    for bucket in (raw, processed, analytics):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=raw, VersioningConfiguration={"Status": "Enabled"})
