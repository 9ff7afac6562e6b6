"""Which object versions to send, with which sequencer, and which to skip as already done."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from devtools.ops.replay.listing import ingestion_outputs, list_items
from devtools.ops.replay.model import LOADED_STATES, REPLAY_TAG_PREFIX, Item, Options, ReplayTarget
from handlers import contract
from handlers.contract import (
    AGGREGATES_PREFIX,
    AGGREGATES_SUFFIX,
    REPORTS_PREFIX,
    Env,
    Stage,
)
from handlers.events import SEQUENCER_WIDTH, order_key, part_key, relative_key, split_part


def replay_tag(last_modified: datetime, rank: int) -> str:
    """`00000` + LastModified in milliseconds (11 hex digits) + a 2-digit rank: below S3's sequencers."""
    millis = int(last_modified.timestamp() * 1000)
    return f"{REPLAY_TAG_PREFIX}{millis:011X}{rank % 256:02X}"


def replay_tags(versions: Sequence[Item], known: Mapping[int, str]) -> list[Item]:
    """Sequencers for `versions` (oldest first): `known[i]` where a version's sequencer is known, else one
    that sorts after the previous version and before the next known one (``order_key`` comparison), or a
    problem (`unorderable`) when there is no room."""
    out: list[Item] = []
    previous = ""
    for index, item in enumerate(versions):
        if index in known:
            tag = known[index]
        else:
            tag = replay_tag(item.last_modified, index)
            if previous and order_key(tag) <= order_key(previous):
                tag = f"{previous}1"  # right after the previous version, whose sequencer is a prefix
            following = [known[i] for i in sorted(known) if i > index]
            if len(tag) > SEQUENCER_WIDTH or (following and order_key(tag) >= order_key(following[0])):
                out.append(
                    Item(
                        **{**asdict(item), "problem": "unorderable: no sequencer fits between its neighbours"}
                    )
                )
                continue
        out.append(Item(**{**asdict(item), "tag": tag}))
        previous = tag
    return out


@dataclass(frozen=True)
class Planned:
    item: Item
    action: str  # "send", "skip" or "fail"
    detail: str = ""


def plan(s3: Any, target: ReplayTarget, options: Options) -> list[Planned]:
    """Every object version under the trigger, with its sequencer and whether to send it."""
    by_key = list_items(s3, target, options.prefix)
    if target.stage == Stage.INGESTION:
        planned = _plan_ingestion(s3, target, options, by_key)
    else:
        planned = []
        for versions in by_key.values():
            for index, item in enumerate(versions):
                tagged = Item(**{**asdict(item), "tag": replay_tag(item.last_modified, index)})
                planned.append(_plan_later_stage(s3, target, options, tagged))
    return [
        p
        for p in planned
        if (options.since is None or p.item.last_modified >= options.since)
        and (options.until is None or p.item.last_modified < options.until)
    ]


def _plan_ingestion(
    s3: Any, target: ReplayTarget, options: Options, by_key: Mapping[str, list[Item]]
) -> list[Planned]:
    rels = {key: relative_key(key, target.prefix) for key in by_key}
    outputs = ingestion_outputs(s3, target, rels.values())
    planned: list[Planned] = []
    for key, versions in by_key.items():
        done = outputs.get(rels[key], [])
        known: dict[int, str] = {}
        # A quarantine entry is stale when the version's records/ object, written by a later ingestion,
        # counts nothing quarantined (ingestion writes quarantine/ only when it quarantines something).
        clean = {o.tag for o in done if o.kind == "records" and o.quarantined == 0}
        quarantined = {o.tag for o in done if o.kind == "quarantine"} - clean
        for index, item in enumerate(versions):
            if item.version_id is not None:
                tags = {o.tag for o in done if o.version_id == item.version_id}
            else:  # unversioned: the newest output written after this object was, if any
                later = [o for o in done if o.version_id is None and o.last_modified >= item.last_modified]
                tags = {max(later, key=lambda o: order_key(o.tag)).tag} if later else set()
            if tags:
                known[index] = max(tags, key=order_key)
        for index, item in enumerate(replay_tags(versions, known)):
            if item.problem:
                planned.append(Planned(item, "fail", item.problem))
            elif options.quarantined:
                if index in known and item.tag in quarantined:
                    planned.append(Planned(item, "send", "has quarantine entries"))
                # versions without quarantine entries are not part of this replay
            elif index in known and not options.all:
                planned.append(Planned(item, "skip", "already ingested"))
            else:
                planned.append(Planned(item, "send"))
    return planned


def _plan_later_stage(s3: Any, target: ReplayTarget, options: Options, item: Item) -> Planned:
    if options.all:
        return Planned(item, "send")
    suffix = target.suffixes[0] if target.suffixes else ""
    try:
        rel, tag, part = split_part(item.key, target.prefix, suffix)
    except Exception:  # not a key of this pipeline: the stage reports it; send it as S3 would
        return Planned(item, "send")
    env = target.environment
    if target.stage == Stage.PROCESSING:
        out_key = part_key(
            env.get(Env.AGGREGATES_PREFIX, AGGREGATES_PREFIX), rel, tag, part, AGGREGATES_SUFFIX
        )
        document = _get_json(s3, target.dest_bucket, out_key)
        if document is None:
            return Planned(item, "send")
        current = (
            env.get(Env.AGGREGATION_WINDOW) or contract.DEFAULT_WINDOW,
            [
                d
                for d in (env.get(Env.AGGREGATION_DIMENSIONS) or ",".join(contract.DEFAULT_DIMENSIONS)).split(
                    ","
                )
                if d
            ],
            [
                m
                for m in (env.get(Env.AGGREGATION_METRICS) or ",".join(contract.DEFAULT_METRICS)).split(",")
                if m
            ],
        )
        done = (document.get("window"), document.get("dimensions"), document.get("metrics"))
        source_key = (document.get("source") or {}).get("key")
        if done == current and source_key == item.key:
            return Planned(item, "skip", "aggregates computed with the current settings")
        return Planned(item, "send", "aggregates of other settings")
    # One report per raw version: a version of several parts lists each part's document in "parts".
    report_key = part_key(env.get(Env.REPORTS_PREFIX, REPORTS_PREFIX), rel, tag, 0, AGGREGATES_SUFFIX)
    report = _get_json(s3, target.dest_bucket, report_key)
    if report is None or report.get("database") not in LOADED_STATES:
        return Planned(item, "send")
    kwargs = {"Bucket": target.bucket, "Key": item.key} | (
        {"VersionId": item.version_id} if item.version_id else {}
    )
    digest = hashlib.sha256(s3.get_object(**kwargs)["Body"].read()).hexdigest()
    parts = report.get("parts") or [{"part": 0, **(report.get("source") or {})}]
    if any(entry.get("part") == part and entry.get("sha256") == digest for entry in parts):
        return Planned(item, "skip", f"loaded ({report['database']})")
    return Planned(item, "send", "report of other bytes")


def _get_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as exc:  # NoSuchKey, or not JSON: nothing usable is there
        if getattr(exc, "response", {}).get("Error", {}).get("Code") not in (None, "NoSuchKey", "404"):
            raise
        return None
    return document if isinstance(document, dict) else None
