"""The moto internals the local run cannot do without, and nothing else.

Pinned: ``moto==5.2.5`` (requirements-dev.txt). ``tests/devtools/localrun/test_localrun_moto_internals.py``
is the canary: after an upgrade it fails, naming moto and this version, when one of these changed.

The emulator otherwise uses moto's documented surface: ``ThreadedMotoServer``, and the server's
``/moto-api/reset`` and ``/moto-api/reset-auth`` endpoints. moto documents no hook for what follows, so
each is a patch of a private function, applied by one function here that returns the undo (moto's state is
process-global, and the test suite also runs ``mock_aws`` in the same process):

* :func:`route_lambda_notifications`: moto's S3 notification code matches an event against the bucket's
  notification configuration (event name, prefix, suffix) and builds the event JSON as S3 does, then
  hands it to ``moto.s3.notifications._invoke_awslambda``, whose Lambda backend needs Docker. The local run
  keeps moto's matching and event, and replaces only that hand-off. (Routing the notifications through
  SQS instead would change what the stack declares.)
* :func:`decorate_s3_event_records`: S3 names the object's version in events from a versioned bucket and
  orders PUTs to a key by a growing ``sequencer``; moto's ``_get_s3_event`` sends neither. It is wrapped so
  each record can be completed with the object's version id.
* :func:`one_event_per_multipart_upload`: S3 sends one event when a multipart upload completes,
  ``s3:ObjectCreated:CompleteMultipartUpload``. moto's ``S3Backend.complete_multipart_upload`` stores the
  object through ``put_object`` (which sends ``s3:ObjectCreated:Put``) and ``put_object_tagging`` (which sends
  ``s3:ObjectTagging:Put``) before sending its own event, so an ``s3:ObjectCreated:*`` notification fired
  twice for one object. While a completion runs (in its request's thread), ``notifications.send_event``
  drops every event but the completion's.
* :func:`copies_get_a_full_object_checksum`: a CopyObject writes a new single-part object, whose checksum
  S3 computes over the copy's bytes. moto's ``S3Backend.copy_object`` copies the source's checksum value
  but not its type, so the copy of a multipart object carried the parts' composite checksum as if it were
  the object's, and every GET of it failed boto3's checksum validation (``FlexibleChecksumError``). The
  copy's checksum is computed over its bytes, as a full-object checksum.
* :func:`authorise_by_resource_arn`: moto authorises a request against the resource its response class's
  ``_determine_resource()`` names, or ``*`` without one; its Secrets Manager and SNS responses have none, so
  a role granted ``GetSecretValue`` on its one secret, or ``Publish`` on its one topic, would be denied.
  Both classes get the method, as moto's own SQS response has, so the declared resource is what is checked.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

PINNED = "moto==5.2.5"

Undo = Callable[[], None]
LambdaHandOff = Callable[[str, dict[str, Any]], None]
"""Receives (function ARN, S3 event JSON as moto built it)."""
RecordDecorator = Callable[[dict[str, Any], str | None], None]
"""Receives (one record of an S3 event, the object's version id or None) and may add to the record."""

# The private functions replaced, with the parameters moto calls them with (checked by the canary).
PATCHED_FUNCTIONS = {
    "moto.s3.notifications._invoke_awslambda": ("account_id", "event_body", "fn_arn", "region_name"),
    "moto.s3.notifications._get_s3_event": ("event_name", "bucket", "key", "notification_id"),
}
# The methods wrapped so that a multipart upload sends one event (checked by the canary).
WRAPPED_FOR_MULTIPART = {
    "moto.s3.notifications.send_event": ("account_id", "event_name", "bucket", "key"),
    "moto.s3.models.S3Backend.complete_multipart_upload": ("self", "bucket_name", "multipart_id", "body"),
}
# The method wrapped so that a copy gets its own checksum (the canary checks its first parameters).
COPY_OBJECT = (
    "moto.s3.models.S3Backend.copy_object",
    ("self", "src_key", "dest_bucket_name", "dest_key_name"),
)
# The method moto's BaseResponse.call_action asks for the resource a request is authorised against.
RESOURCE_HOOK = "_determine_resource"


def route_lambda_notifications(hand_off: LambdaHandOff) -> Undo:
    """Every S3 → Lambda notification moto sends goes to ``hand_off`` (inside the S3 request that caused
    it, as moto's own hand-off runs) instead of moto's Lambda backend."""
    from moto.s3 import notifications

    original = notifications._invoke_awslambda

    def invoke(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        hand_off(fn_arn, event_body)

    notifications._invoke_awslambda = invoke

    def undo() -> None:
        notifications._invoke_awslambda = original

    return undo


def decorate_s3_event_records(decorate: RecordDecorator) -> Undo:
    """Every S3 event moto builds passes each of its records to ``decorate``, with the object's version id."""
    from moto.s3 import notifications

    original = notifications._get_s3_event

    def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        version = getattr(key, "version_id", None)
        for record in event["Records"]:
            decorate(record, version)
        return event

    notifications._get_s3_event = s3_event

    def undo() -> None:
        notifications._get_s3_event = original

    return undo


def one_event_per_multipart_upload() -> Undo:
    """A completed multipart upload sends only ``s3:ObjectCreated:CompleteMultipartUpload``, as S3 does."""
    from moto.s3 import notifications
    from moto.s3.models import S3Backend

    completing = threading.local()  # moto's server runs each request in a thread of its own
    kept = notifications.S3NotificationEvent.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD_EVENT
    original_send, original_complete = notifications.send_event, S3Backend.complete_multipart_upload

    def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        if getattr(completing, "active", False) and event_name != kept:
            return
        original_send(account_id, event_name, bucket, key)

    def complete_multipart_upload(self: Any, bucket_name: str, multipart_id: str, body: Any) -> Any:
        completing.active = True
        try:
            return original_complete(self, bucket_name, multipart_id, body)
        finally:
            completing.active = False

    notifications.send_event = send_event
    S3Backend.complete_multipart_upload = complete_multipart_upload  # type: ignore[method-assign]

    def undo() -> None:
        notifications.send_event = original_send
        S3Backend.complete_multipart_upload = original_complete  # type: ignore[method-assign]

    return undo


def copies_get_a_full_object_checksum() -> Undo:
    """The copy of an object with a checksum gets the checksum of its own bytes, of the full object."""
    from moto.s3.models import S3Backend
    from moto.s3.utils import compute_checksum

    original = S3Backend.copy_object

    def copy_object(
        self: Any, src_key: Any, dest_bucket_name: str, dest_key_name: str, *args: Any, **kwargs: Any
    ) -> Any:
        result = original(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs)
        if src_key.checksum_value and src_key.checksum_algorithm:
            copied = self.get_object(dest_bucket_name, dest_key_name)
            algorithm = src_key.checksum_algorithm.upper()
            copied.checksum_value = compute_checksum(copied.value, algorithm).decode("ascii")
            copied.checksum_type, copied.checksum_parts = "FULL_OBJECT", None
        return result

    S3Backend.copy_object = copy_object  # type: ignore[method-assign]

    def undo() -> None:
        S3Backend.copy_object = original  # type: ignore[method-assign]

    return undo


def authorise_by_resource_arn() -> Undo:
    """Secrets Manager calls are authorised against the secret's ARN, SNS calls against the topic's."""
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.sns.responses import SNSResponse

    saved: dict[type, Any] = {}
    for cls, hook in ((SecretsManagerResponse, _secret_resource), (SNSResponse, _topic_resource)):
        saved[cls] = getattr(cls, RESOURCE_HOOK, None)
        setattr(cls, RESOURCE_HOOK, hook)

    def undo() -> None:
        for cls, original in saved.items():
            if original is None:
                with contextlib.suppress(AttributeError):
                    delattr(cls, RESOURCE_HOOK)
            else:
                setattr(cls, RESOURCE_HOOK, original)

    return undo


def _topic_resource(self: Any) -> str:
    return self._get_param("TopicArn") or self._get_param("TargetArn") or "*"


def _secret_resource(self: Any) -> str:
    secret_id = self._get_param("SecretId")
    if not secret_id:
        return "*"
    secret = self.backend.secrets.get(secret_id)
    return secret.arn if secret is not None else "*"
