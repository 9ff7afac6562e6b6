"""Analytics stage: ``aggregates/<rel>/<TAG>[.pNNNNN].json`` → database, ``reports/<rel>/<TAG>.json``, SNS.

A raw version of several ``records/`` parts comes as one document per part (``handlers.parts``), each
loaded as a contribution of its own, in any order; the version has one report, written by the invocation
that finds, after its own commit, every part in (``handlers.versions``; without a database, the newest
part's, or one whose current document the report lacks), and built from all of them, one document at a time
(``handlers.reports.VersionTotals``) within the invocation's deadline. A part of several builds no
report of its own; one that completes nothing writes none and says why in its log line (``report``). A
version of one part is reported as below, exactly as before parts.

Order matters for retries: everything the report says is computed before the database transaction,
the transaction commits, then the report is written, then the summary is published; nothing between
the commit and the report can fail but the S3 call itself. A retry after a later failure finds the
ledger row (the load is not repeated) and writes the same report bytes: the report describes the
aggregates document and the state its first delivery recorded (``loaded``, ``duplicate`` or
``superseded``, see ``handlers.database``), never the wall clock or the delivery. The SNS summary is
at-least-once and says whether this delivery was a repeat.

Report states: ``loaded`` (its contribution is in the totals, or was until a newer version replaced it),
``duplicate`` (the same raw version with the same content was in the totals already), ``superseded``
(a newer version of its raw key was in the totals already: it changed nothing), ``rejected`` (not
loaded, with a reason), ``not_configured`` (no database). Totals in the report are the document's own,
exact: ``count`` an integer, ``sum``, ``min``, ``max`` canonical decimal strings.

Counts here are in groups, reported under their own names (``handlers.contract.GROUP_METRIC_NAMES``):
``GroupsRead`` = groups in the document, ``GroupsLoaded`` = groups reported (loaded, or with no database
configured, reported only), ``ObjectsRejected`` = 1 for an object that is not an aggregates document of
this pipeline (reported as ``rejected``, never raised).

The database URL comes from the Secrets Manager secret ``DATABASE_SECRET_ARN`` names (``SecretString``
is the URL, or JSON ``{"url": ...}``, or the ``{"username", "password"}`` RDS manages, with
``DATABASE_ENDPOINT`` naming ``host:port/dbname``), read on first use and kept for the container's life
together with the engine; a failed read is not cached, so the next invocation tries again. The event
``{"action": "migrate"}`` (sent by ``pulumi up``) upgrades that database's schema instead.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import msgspec

from handlers import contract, versions
from handlers.config import AnalyticsConfig, load_analytics
from handlers.contract import ACTION_FIELD, Env, Stage
from handlers.documents import read_groups
from handlers.errors import ConfigError, DatabaseUnavailableError, EventError, LoadRejectedError
from handlers.events import ObjectRef, output_key, part_key, relative_key, split_part
from handlers.metrics import Counts, handle_objects
from handlers.reports import build_report, rejected, summary

INPUT_PREFIX = contract.AGGREGATES_PREFIX  # the processing stage's AGGREGATES_PREFIX, fixed by the chain
INPUT_SUFFIX = contract.AGGREGATES_SUFFIX
MIGRATE_ACTION = contract.MIGRATE_ACTION


def database_url(secret_string: str, endpoint: str | None = None) -> str:
    """The SQLAlchemy URL in a secret: the string itself, or the ``url`` member of a JSON object.

    A secret RDS manages for a database the stack owns (``database.create``) holds only ``{"username",
    "password"}``: with ``endpoint`` (``DATABASE_ENDPOINT``, ``host:port/dbname``, set by the stack), the URL
    is built from them, over TLS.
    """
    text = secret_string.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
            url = document.get("url")
        except (ValueError, AttributeError) as exc:
            raise ConfigError("the database secret is JSON but not an object") from exc
        if url is None and endpoint and {"username", "password"} <= set(document):
            from urllib.parse import quote

            user, password = (
                quote(str(document["username"]), safe=""),
                quote(str(document["password"]), safe=""),
            )
            return f"postgresql+psycopg2://{user}:{password}@{endpoint}?sslmode=require"
        if not isinstance(url, str) or not url:
            raise ConfigError('the database secret is JSON without a "url" string')
        return url
    if "://" not in text:
        raise ConfigError("the database secret is neither a URL nor JSON with a url")
    return text


@dataclass
class Runtime:
    """Everything built once per container; the URL and the engine on first use."""

    config: AnalyticsConfig  # parsed environment
    s3: Any  # boto3 S3 client
    sns: Any  # boto3 SNS client (None without a topic)
    secrets: Any  # boto3 Secrets Manager client (None without a database)
    _url: str | None = field(default=None, repr=False)
    _engine: Any = field(default=None, repr=False)

    def url(self, refresh: bool = False) -> str:
        """The URL in the database secret (for a database the stack owns, the master user's); `refresh`
        reads the secret again (after a rotation)."""
        if self._url is None or refresh:
            if not self.config.database_secret_arn:
                raise ConfigError("no database is configured (DATABASE_SECRET_ARN is not set)")
            secret = self.secrets.get_secret_value(SecretId=self.config.database_secret_arn)
            self._url = database_url(secret["SecretString"], os.environ.get(Env.DATABASE_ENDPOINT))
        return self._url

    def engine(self) -> Any:
        """The loads' engine: as the application user with IAM tokens when the stack owns the database
        (``DATABASE_APP_USER``; the master secret is then not read), else as the secret's user. New
        connections sign in afresh (``handlers.connections``), so a rotated password or an expired token
        does not outlive the container's first connection."""
        if self._engine is None:
            if not self.config.database_secret_arn:
                raise ConfigError("no database is configured (DATABASE_SECRET_ARN is not set)")
            from handlers import connections  # SQLAlchemy only when a database is configured

            try:
                self._engine = connections.open_engine(
                    lambda refresh: self.url(refresh),
                    app_user=os.environ.get(Env.DATABASE_APP_USER) or None,
                    endpoint=os.environ.get(Env.DATABASE_ENDPOINT) or None,
                    rds=lambda: boto3.client("rds"),
                )
            except DatabaseUnavailableError:
                # the secret read again may still have been the old version: the next invocation reads it anew
                self._url = None
                raise
        return self._engine


@functools.cache
def runtime() -> Runtime:
    config = load_analytics()
    return Runtime(
        config=config,
        s3=boto3.client("s3"),
        sns=boto3.client("sns") if config.summary_topic_arn else None,
        secrets=boto3.client("secretsmanager") if config.database_secret_arn else None,
    )


def _report_key(config: AnalyticsConfig, key: str) -> tuple[str, str, int | None]:
    """(report key, rel for the summary, part) of an aggregates key; part None for a key the processing
    stage does not write. A part's report key is its version's (``handlers.events.part_key``); part k >= 1
    writes there only its rejection, the version's report is ``_publish``'s."""
    try:
        rel, tag, part = split_part(key, INPUT_PREFIX, INPUT_SUFFIX)
    except EventError:
        rel = relative_key(key, INPUT_PREFIX, INPUT_SUFFIX)
        return output_key(config.reports_prefix, rel, INPUT_SUFFIX), rel, None
    return part_key(config.reports_prefix, rel, tag, part, INPUT_SUFFIX), rel, part


def _publish(rt: Runtime, key: str, rel: str, report: dict[str, Any], counts: Counts, repeated: bool) -> None:
    """Write the report, then publish its summary (the order retries rely on: module docstring)."""
    config = rt.config
    rt.s3.put_object(
        Bucket=config.common.dest_bucket,
        Key=key,
        Body=msgspec.json.format(msgspec.json.encode(report, order="sorted"), indent=2),
        ContentType="application/json",
        Metadata=counts.as_metadata(),
    )
    if rt.sns is not None:
        subject, message = summary(report, rel, repeated)
        rt.sns.publish(TopicArn=config.summary_topic_arn, Subject=subject, Message=message)


def analyse_object(rt: Runtime, ref: ObjectRef) -> tuple[Counts, str | None, dict[str, Any]]:
    """Load one aggregates object and report on it, or on its version once this part completed it;
    returns counts, the report key (None when nothing was reported) and log fields."""
    config = rt.config
    # The current object, not the version the event names: the key holds one raw version, whose current
    # document is its latest processing. A late event for an earlier processing (a versioned analytics
    # bucket) must not replace a newer load with older bytes.
    response = rt.s3.get_object(Bucket=ref.bucket, Key=ref.key)
    raw = response["Body"].read()  # our own document: its size grows with groups, not records
    # The content's hash, not the ETag, names what was loaded: under SSE-KMS an ETag is not an MD5 of
    # the bytes, so identical documents written twice may carry different ETags.
    content_sha256 = hashlib.sha256(raw).hexdigest()
    source = {"bucket": ref.bucket, "key": ref.key, "sha256": content_sha256}
    key, rel, part = _report_key(config, ref.key)
    repeated = False
    if part is None:
        report, counts = rejected(
            source, "not_a_versioned_key", f"not an {INPUT_PREFIX}<name>/<version>{INPUT_SUFFIX} key"
        )
        _publish(rt, key, rel, report, counts, repeated)
        return replace(counts, objects_written=1), key, {"database": report["database"]}
    try:
        document, groups = read_groups(raw)
    except ValueError as exc:
        report, counts = rejected(source, "not_an_aggregates_document", str(exc))
        _publish(rt, key, rel, report, counts, repeated)
        return replace(counts, objects_written=1), key, {"database": report["database"]}
    # A version of one part is reported here; a part of several only counts towards its version's report.
    single = None
    if (part, document.origin.parts) == (0, 1):
        single = build_report(source, document, groups, "not_configured", config.report_top_groups)
    state = "not_configured"
    counts = Counts(records_read=len(groups), records_valid=len(groups))
    if config.database_secret_arn:
        from handlers import database

        setting = database.Setting(document.window, tuple(document.dimensions), tuple(document.metrics))
        o = document.origin
        origin = database.Origin(o.rel, o.sequencer, o.version_id, o.part, o.parts)
        try:  # anything else the load raises (an outage, a config error) fails the event
            loaded = database.load(
                rt.engine(), ref.key, content_sha256, setting, origin, groups, config.overwrite_mode
            )
        except LoadRejectedError as exc:
            report, counts = rejected(source, exc.reason, exc.detail)
            _publish(rt, key, rel, report, counts, repeated)
            return replace(counts, objects_written=1), key, {"database": report["database"]}
        state, repeated = loaded.state, loaded.repeated
    if single is not None:
        single["database"] = state
        _publish(rt, key, rel, single, counts, repeated)
        return replace(counts, objects_written=1), key, {"database": state}
    # One part of several: the version's report once every part is in (handlers.versions).
    fields: dict[str, Any] = {"database": state, "part": part}
    engine = rt.engine() if config.database_secret_arn else None
    key = part_key(config.reports_prefix, rel, document.origin.sequencer, 0, INPUT_SUFFIX)
    found = versions.gather(
        rt.s3,
        ref.bucket,
        (source, document),
        engine,
        config.report_top_groups,
        groups,
        report=(config.common.dest_bucket, key),
    )
    if isinstance(found, str):
        return counts, None, fields | {"report": found}
    _publish(rt, key, rel, found, counts, repeated)
    return replace(counts, objects_written=1), key, fields | {"report": "written for all parts"}


def migrate(rt: Runtime) -> dict[str, Any]:
    """The ``{"action": "migrate"}`` event: upgrade the configured database as the secret's (master) user,
    read afresh, and with ``DATABASE_APP_USER`` bring the application user to the loads' privileges
    (``handlers.app_user``); return the revision (and the user)."""
    from handlers import database

    url = rt.url(refresh=True)
    result: dict[str, Any] = {"revision": database.migrate(url)}
    user = os.environ.get(Env.DATABASE_APP_USER)
    if user:
        from handlers import app_user

        result["appUser"] = app_user.apply(url, user).as_result()
    return result


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rt = runtime()
    if isinstance(event, Mapping) and ACTION_FIELD in event:
        if event[ACTION_FIELD] != MIGRATE_ACTION:
            raise EventError(
                f"unknown action {str(event[ACTION_FIELD])[:64]!r}: the only one is {MIGRATE_ACTION!r}"
            )
        return migrate(rt)

    def process(ref: ObjectRef) -> tuple[Counts, dict[str, Any]]:
        counts, written, extra = analyse_object(rt, ref)
        return counts, {"written": [written] if written else [], **extra}

    return handle_objects(rt.config.common.metrics_namespace, Stage.ANALYTICS, event, context, process)
