"""moto as a local AWS: a server on loopback, an admin to set it up, IAM enforced for everything after.

Narrow extensions of moto, all undone by :meth:`AwsEmulator.stop` (moto's state is process-global and
the test suite also uses ``mock_aws`` in the same process); the private moto functions they need, and why,
are in :mod:`devtools.localrun._moto_internals`:

* moto's S3 notification code matches the event against the bucket's notification configuration (event
  name, prefix, suffix) and builds the event JSON as S3 does; its hand-off to Lambda (which would need
  Docker) is routed to ``on_lambda_event`` instead, with moto's own event JSON, to which the object's
  ``versionId`` is added when the bucket is versioned, and a ``sequencer`` that grows with every PUT (S3
  sends both; moto neither), so a handler reads the exact version it was told about and can order it.
* moto sends two ``s3:ObjectCreated`` events for a completed multipart upload (its ``Put`` and its
  ``CompleteMultipartUpload``); S3 sends the second alone, and so does the emulator. Its copy of a
  multipart object kept the parts' composite checksum as the copy's; the copy gets its own.
* moto authorises Secrets Manager and SNS calls against resource ``*``, so a role granted ``GetSecretValue``
  on its one secret or ``Publish`` on its one topic (least privilege) would be denied. The response classes
  learn the secret's or topic's ARN, as moto already does for SQS queues, so the declared resource is what
  is checked.

moto's state is reset through the server's documented ``/moto-api/reset`` when the emulator starts and stops.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import requests
from botocore.config import Config

from devtools.localrun import _moto_internals

ACCOUNT_ID = "123456789012"
ADMIN_USER = "local-run-admin"
LAMBDA_SERVICE_USER = "local-run-lambda-service"
"""Plays the Lambda service: it alone may assume the stage roles (trust policy), as only Lambda may in AWS."""

_ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "LocalRunAdmin", "Effect": "Allow", "Action": "*", "Resource": "*"}],
}
_SERVICE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "AssumeStageRoles", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
    ],
}


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def as_env(self) -> dict[str, str]:
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env

    def as_client_args(self) -> dict[str, str | None]:
        """The keyword arguments a boto3 client takes for these credentials."""
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }


LambdaHandOff = Callable[[str, dict[str, Any]], None]
"""Receives (function ARN, S3 event JSON as moto built it)."""

_lock = threading.Lock()
_active: AwsEmulator | None = None
_session: boto3.session.Session | None = None


def _shared_session() -> boto3.session.Session:
    """One boto3 session for every emulator of the process: it holds no credentials or endpoint of its
    own (clients get both), only botocore's loaded service models and endpoint rules, which are costly
    to load again for every run."""
    global _session
    with _lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session


class AwsEmulator:
    """A moto server on 127.0.0.1 with IAM enforcement; one at a time per process."""

    def __init__(self, region: str, on_lambda_event: LambdaHandOff) -> None:
        self.region = region
        self.account_id = ACCOUNT_ID
        self._on_lambda_event = on_lambda_event
        self._server = None
        self._saved: dict[str, Any] = {}
        self._undo: list[_moto_internals.Undo] = []  # moto patches, undone last first
        self.endpoint = ""
        self.admin: Credentials | None = None
        self.lambda_service: Credentials | None = None
        self._session = _shared_session()
        self._clients: dict[tuple[str, Credentials], Any] = {}
        self._clients_lock = threading.Lock()
        self._sequencers = itertools.count(time.time_ns() // 1000)

    # lifecycle -----------------------------------------------------------------------------------
    def start(self) -> AwsEmulator:
        global _active
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        with _lock:
            if _active is not None:
                raise RuntimeError("another local AWS emulator is running in this process")
            _active = self
        try:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            self._patch_moto()
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._server.start()
            host, port = self._server.get_host_and_port()
            self.endpoint = f"http://{host}:{port}"
            self._reset_moto_state()
            self._create_principals()
            self._enforce_iam()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        global _active
        try:
            if self._server is not None:
                with contextlib.suppress(Exception):
                    previous = str(self._saved.pop("auth_count", "inf")).encode()
                    requests.post(f"{self.endpoint}/moto-api/reset-auth", data=previous, timeout=10)
                with contextlib.suppress(Exception):
                    self._reset_moto_state()
                self._server.stop()
                self._server = None
        finally:
            self._unpatch_moto()
            with _lock:
                if _active is self:
                    _active = None

    def __enter__(self) -> AwsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # clients -------------------------------------------------------------------------------------
    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        """A client signed with ``credentials`` (default: the admin); cached, as clients are thread-safe."""
        creds = credentials or self.admin
        assert creds is not None, "start() the emulator first"
        key = (service, creds)
        with self._clients_lock:
            if key not in self._clients:
                # One session shares botocore's loaded service models: a new client costs ms, not 0.3 s.
                self._clients[key] = self._session.client(
                    service,
                    region_name=self.region,
                    endpoint_url=self.endpoint,
                    **creds.as_client_args(),
                    config=Config(
                        retries={"max_attempts": 2, "mode": "standard"}, s3={"addressing_style": "path"}
                    ),
                )
            return self._clients[key]

    def assume_role(self, role_arn: str, session_name: str) -> Credentials:
        sts = self.client("sts", self.lambda_service)
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=3600)[
            "Credentials"
        ]
        return Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])

    def lambda_service_principal(self) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{LAMBDA_SERVICE_USER}"

    # internals -----------------------------------------------------------------------------------
    def _create_principals(self) -> None:
        # Before enforcement any signature is accepted: this is the only unauthenticated set-up.
        iam = self.client("iam", Credentials("bootstrap", "bootstrap"))
        keys = {}
        for user, policy in ((ADMIN_USER, _ADMIN_POLICY), (LAMBDA_SERVICE_USER, _SERVICE_POLICY)):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName=f"{user}-policy", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        self.admin = keys[ADMIN_USER]
        self.lambda_service = keys[LAMBDA_SERVICE_USER]

    def _enforce_iam(self) -> None:
        response = requests.post(f"{self.endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
        response.raise_for_status()
        self._saved["auth_count"] = response.json().get("PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT", "inf")

    def _patch_moto(self) -> None:
        self._undo.append(_moto_internals.route_lambda_notifications(self._hand_off))
        self._undo.append(_moto_internals.decorate_s3_event_records(self._complete_record))
        self._undo.append(_moto_internals.one_event_per_multipart_upload())
        self._undo.append(_moto_internals.copies_get_a_full_object_checksum())
        self._undo.append(_moto_internals.authorise_by_resource_arn())

    def _unpatch_moto(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _complete_record(self, record: dict[str, Any], version: str | None) -> None:
        # S3 names the version (versioned buckets) and orders PUTs to a key by a growing sequencer; moto
        # sends neither, and the pipeline keys every stage's output on the latter.
        if version and version != "null":
            record["s3"]["object"]["versionId"] = version
        record["s3"]["object"]["sequencer"] = f"{next(self._sequencers):018X}"

    def _hand_off(self, fn_arn: str, event_body: Any) -> None:
        # Runs inside the S3 request that created the object, as moto's own hand-off does; the event is
        # queued, never run here, so the upload returns at once as it does in AWS (asynchronous invoke).
        self._on_lambda_event(fn_arn, json.loads(json.dumps(event_body)))

    def _reset_moto_state(self) -> None:
        response = requests.post(f"{self.endpoint}/moto-api/reset", timeout=10)
        response.raise_for_status()
