"""Canary of devtools/localrun/_moto_internals.py: the private moto functions the local run patches.

Each test fails with a message naming moto, the installed and the pinned version and what changed, so an
upgrade of `moto` that breaks the emulator says where to look instead of failing somewhere in tests/e2e.
"""

from __future__ import annotations

import importlib
import inspect
import json
from importlib.metadata import version

import boto3
import pytest
from moto import mock_aws

from devtools.localrun import _moto_internals as internals
from handlers import contract

INSTALLED = version("moto")
REGION = "eu-west-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:probe"


def broken(what: str) -> str:
    return (
        f"moto {INSTALLED} (the local run was written against {internals.PINNED}): {what}. "
        "Update devtools/localrun/_moto_internals.py for this version."
    )


def resolve(dotted: str) -> object:
    """``package.module.name`` or ``package.module.Class.name``."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name, None)
        return found
    return None


PATCHED = {**internals.PATCHED_FUNCTIONS, **internals.WRAPPED_FOR_MULTIPART}


@pytest.mark.parametrize("dotted", sorted(PATCHED))
def test_the_patched_functions_still_exist_with_the_same_parameters(dotted: str):
    function = resolve(dotted)
    assert callable(function), broken(f"{dotted} is gone")
    parameters = tuple(inspect.signature(function).parameters)
    assert parameters == PATCHED[dotted], broken(f"{dotted} now takes {parameters}, not {PATCHED[dotted]}")


def multipart_events(patched: bool) -> list[str]:
    """The event names a notification of ``s3:ObjectCreated:*`` gets for one 2-part multipart upload."""
    received: list[dict] = []
    undo = [internals.route_lambda_notifications(lambda arn, event: received.append(event))]
    if patched:
        undo.append(internals.one_event_per_multipart_upload())
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket="probe", CreateBucketConfiguration={"LocationConstraint": REGION})
            s3.put_bucket_notification_configuration(
                Bucket="probe",
                NotificationConfiguration={
                    "LambdaFunctionConfigurations": [
                        {"LambdaFunctionArn": FUNCTION_ARN, "Events": ["s3:ObjectCreated:*"]}
                    ]
                },
            )
            upload = s3.create_multipart_upload(Bucket="probe", Key="big.jsonl")["UploadId"]
            part = {"Bucket": "probe", "Key": "big.jsonl", "UploadId": upload}
            etags = [
                s3.upload_part(**part, PartNumber=n, Body=body)["ETag"]
                for n, body in ((1, b"x" * (5 * 1024 * 1024)), (2, b"y"))
            ]
            s3.complete_multipart_upload(
                Bucket="probe",
                Key="big.jsonl",
                UploadId=upload,
                MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]},
            )
    finally:
        for step in reversed(undo):
            step()
    return [event["Records"][0]["eventName"] for event in received]


def test_moto_still_notifies_a_multipart_upload_twice_and_the_patch_makes_it_once():
    from moto.s3 import notifications
    from moto.s3.models import S3Backend

    originals = (notifications.send_event, S3Backend.complete_multipart_upload)
    twice = ["ObjectCreated:Put", "ObjectCreated:CompleteMultipartUpload"]
    assert multipart_events(patched=False) == twice, broken(
        "a multipart upload no longer sends ObjectCreated:Put then CompleteMultipartUpload: the "
        "one_event_per_multipart_upload patch may be unneeded"
    )
    assert multipart_events(patched=True) == ["ObjectCreated:CompleteMultipartUpload"], broken(
        "the patched completion does not send exactly S3's one event"
    )
    assert (notifications.send_event, S3Backend.complete_multipart_upload) == originals


def test_an_s3_notification_reaches_the_hand_off_with_the_records_completed():
    received: list[tuple[str, dict]] = []
    versions: list[str | None] = []

    def decorate(record: dict, version_id: str | None) -> None:
        versions.append(version_id)
        record["s3"]["object"]["probe"] = True

    from moto.s3 import notifications

    originals = (notifications._invoke_awslambda, notifications._get_s3_event)
    undo = [
        internals.route_lambda_notifications(lambda arn, event: received.append((arn, event))),
        internals.decorate_s3_event_records(decorate),
    ]
    try:
        # GIVEN a versioned bucket notifying a function of every object created under incoming/
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket="probe", CreateBucketConfiguration={"LocationConstraint": REGION})
            s3.put_bucket_versioning(Bucket="probe", VersioningConfiguration={"Status": "Enabled"})
            s3.put_bucket_notification_configuration(
                Bucket="probe",
                NotificationConfiguration={
                    "LambdaFunctionConfigurations": [
                        {
                            "Id": "probe-notification",
                            "LambdaFunctionArn": FUNCTION_ARN,
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {
                                "Key": {"FilterRules": [{"Name": "prefix", "Value": contract.INPUT_PREFIX}]}
                            },
                        }
                    ]
                },
            )
            # WHEN one object is put under the prefix and one outside it
            put = s3.put_object(Bucket="probe", Key=f"{contract.INPUT_PREFIX}a b.json", Body=b"{}")
            s3.put_object(Bucket="probe", Key="elsewhere/b.json", Body=b"{}")
    finally:
        for step in reversed(undo):
            step()
    # THEN moto matched the filter, built the event and handed it over, each record completed
    assert [arn for arn, _ in received] == [FUNCTION_ARN], broken(
        "S3 -> Lambda notifications no longer go through moto.s3.notifications._invoke_awslambda"
    )
    event = json.loads(json.dumps(received[0][1]))
    record = event["Records"][0]
    assert record["s3"]["object"].get("probe") is True, broken(
        "S3 events are no longer built by moto.s3.notifications._get_s3_event"
    )
    assert versions == [put["VersionId"]], broken("the key object passed to _get_s3_event has no version_id")
    assert record["s3"]["configurationId"] == "probe-notification", broken(
        "the event lost its configurationId"
    )
    # AND undoing restores moto's own functions
    assert (notifications._invoke_awslambda, notifications._get_s3_event) == originals


def test_moto_still_authorises_against_the_resource_hook_and_lacks_it_for_secrets_and_topics():
    from moto.core.responses import BaseResponse
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.sns.responses import SNSResponse

    assert internals.RESOURCE_HOOK in inspect.getsource(BaseResponse.call_action), broken(
        f"BaseResponse.call_action no longer asks {internals.RESOURCE_HOOK}() for the resource to authorise"
    )
    for cls in (SecretsManagerResponse, SNSResponse):
        assert internals.RESOURCE_HOOK not in vars(cls), broken(
            f"{cls.__name__} now defines its own {internals.RESOURCE_HOOK}: the patch may be unneeded, "
            "or would hide moto's"
        )
    assert list(inspect.signature(BaseResponse._get_param).parameters)[:2] == ["self", "param_name"], broken(
        "BaseResponse._get_param(param_name) changed"
    )
    assert isinstance(inspect.getattr_static(SecretsManagerResponse, "backend"), property), broken(
        "SecretsManagerResponse.backend is no longer a property"
    )
    # The patch is applied to both classes and undone without a trace.
    undo = internals.authorise_by_resource_arn()
    try:
        assert all(internals.RESOURCE_HOOK in vars(cls) for cls in (SecretsManagerResponse, SNSResponse))
    finally:
        undo()
    assert not any(internals.RESOURCE_HOOK in vars(cls) for cls in (SecretsManagerResponse, SNSResponse))


def test_the_secrets_store_still_finds_a_secret_by_name_and_by_arn():
    from moto.secretsmanager.models import secretsmanager_backends

    with mock_aws():
        created = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="probe", SecretString="x"
        )
        secrets = secretsmanager_backends["123456789012"][REGION].secrets
        by_name, by_arn = secrets.get("probe"), secrets.get(created["ARN"])
    assert by_name is not None, broken("the backend's secrets.get(name) no longer finds a secret")
    assert by_arn is not None, broken("the backend's secrets.get(arn) no longer finds a secret")
    assert by_name.arn == created["ARN"], broken("a stored secret no longer carries its ARN as .arn")


def test_the_copy_method_still_takes_the_same_first_parameters():
    dotted, expected = internals.COPY_OBJECT
    function = resolve(dotted)
    assert callable(function), broken(f"{dotted} is gone")
    parameters = tuple(inspect.signature(function).parameters)[: len(expected)]
    assert parameters == expected, broken(f"{dotted} now starts with {parameters}, not {expected}")


def read_copy_of_a_multipart_object(patched: bool) -> str:
    """ "ok", or the error boto3 raises reading the copy of a multipart object back."""
    import io

    from boto3.s3.transfer import TransferConfig

    undo = internals.copies_get_a_full_object_checksum() if patched else None
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket="probe", CreateBucketConfiguration={"LocationConstraint": REGION})
            parts = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
            s3.upload_fileobj(io.BytesIO(b"x" * (6 * 1024 * 1024)), "probe", "staged", Config=parts)
            s3.copy_object(Bucket="probe", Key="copy", CopySource={"Bucket": "probe", "Key": "staged"})
            try:
                s3.get_object(Bucket="probe", Key="copy")["Body"].read()
            except Exception as exc:  # the canary reports what boto3 raised
                return type(exc).__name__
            return "ok"
    finally:
        if undo is not None:
            undo()


def test_moto_still_gives_a_copy_the_composite_checksum_and_the_patch_its_own():
    from moto.s3.models import S3Backend

    original = S3Backend.copy_object
    assert read_copy_of_a_multipart_object(patched=False) == "FlexibleChecksumError", broken(
        "the copy of a multipart object reads back without a checksum error: the "
        "copies_get_a_full_object_checksum patch may be unneeded"
    )
    assert read_copy_of_a_multipart_object(patched=True) == "ok", broken(
        "the patched copy still fails boto3's checksum validation"
    )
    assert original == S3Backend.copy_object
