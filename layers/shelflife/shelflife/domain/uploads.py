"""Uploads as ingest sees them: which object, whose, and for which draft.

Clients write to the upload bucket under ``incoming/<owner>/<file name>``, or
``incoming/<owner>/<draft id>/<file name>`` for an image of a draft; the draft id may
also come as object metadata (``x-amz-meta-draft-id``). S3 reports object keys
URL-encoded (a space is ``+``); they are decoded here, once.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from shelflife.domain.errors import InvalidArgument, RejectedImage

INCOMING_PREFIX = "incoming/"
QUARANTINE_PREFIX = "quarantine/"
DRAFT_METADATA_KEY = "draft-id"
# Owner, user and draft ids end up in table keys, object keys and URLs: keep them plain.
# (The api's callers and drafts are held to the same rule.)
PLAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


@dataclass(frozen=True)
class Upload:
    """One object in the upload bucket, as an event names it."""

    bucket: str
    key: str
    # From the event; the object may have changed since (ingest reads what is there).
    size: int | None = None
    etag: str | None = None


# An upload's id: when its ticket was issued (UTC, to the second) and 18 random hex
# digits, 32 characters in all, first in the file part of its key
# (``incoming/<owner>[/<draft>]/<id>-<file name>``). Ids issued before issue 23 were 32
# random hex digits: they read as ids whose time is unknown.
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def new_upload_id(now: datetime) -> str:
    return f"{now:%Y%m%d%H%M%S}{uuid.uuid4().hex[:18]}"


def upload_id_of(key: str) -> str | None:
    """The id of the upload at ``key`` (its ticket's), or None for a key no ticket
    made (written to the bucket some other way)."""
    head = key.rsplit("/", 1)[-1].split("-", 1)[0]
    return head if _UPLOAD_ID.match(head) and "-" in key.rsplit("/", 1)[-1] else None


def is_upload_id(text: str) -> bool:
    return bool(_UPLOAD_ID.match(text))


def upload_issued_at(upload_id: str) -> datetime | None:
    """When the ticket of ``upload_id`` was issued, if the id says."""
    try:
        return datetime.strptime(upload_id[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def original_name(filename: str) -> str:
    """The file name a client gave, without the upload id the API put before it."""
    head, dash, rest = filename.partition("-")
    return rest if dash and _UPLOAD_ID.match(head) else filename


@dataclass(frozen=True)
class UploadKey:
    owner: str
    draft_id: str | None
    filename: str


def parse_upload_key(key: str, metadata: Mapping[str, str] | None = None) -> UploadKey:
    """Owner, draft and file name of an upload; ``RejectedImage`` (code ``bad_key``)
    for a key that does not say whose it is."""
    if not key.startswith(INCOMING_PREFIX):
        raise RejectedImage(f"upload key {key!r} is not under {INCOMING_PREFIX}", code="bad_key")
    parts = key[len(INCOMING_PREFIX) :].split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise RejectedImage(
            f"upload key {key!r} is not {INCOMING_PREFIX}<owner>/<file> or "
            f"{INCOMING_PREFIX}<owner>/<draft id>/<file>",
            code="bad_key",
        )
    owner, filename = parts[0], parts[-1]
    draft_in_key = parts[1] if len(parts) == 3 else None
    draft_in_metadata = (metadata or {}).get(DRAFT_METADATA_KEY) or None
    if draft_in_key and draft_in_metadata and draft_in_key != draft_in_metadata:
        raise RejectedImage(
            f"draft id {draft_in_key!r} in the key and {draft_in_metadata!r} in the "
            "metadata disagree",
            code="bad_key",
        )
    draft_id = draft_in_key or draft_in_metadata
    for what, value in (("owner", owner), ("draft id", draft_id)):
        if value is not None and not PLAIN_ID.match(value):
            raise RejectedImage(
                f"{what} {value!r} must be 1-128 letters, digits or ._@+- "
                "(starting with a letter or digit)",
                code="bad_key",
            )
    return UploadKey(owner=owner, draft_id=draft_id, filename=filename)


def uploads_from_s3_event(event: Mapping[str, Any]) -> Iterator[Upload]:
    """The created objects of an S3 event notification (directly from S3, or the body
    of an SQS message). S3's test event, sent when notifications are configured, and
    other kinds of events give nothing."""
    if event.get("Event") == "s3:TestEvent":
        return
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidArgument("not an S3 event notification: no Records list")
    for record in records:
        if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith(
            "ObjectCreated:"
        ):
            continue
        s3 = record["s3"]
        size = s3["object"].get("size")
        yield Upload(
            bucket=s3["bucket"]["name"],
            key=unquote_plus(s3["object"]["key"]),
            size=int(size) if size is not None else None,
            etag=s3["object"].get("eTag"),
        )


def uploads_from_sqs_body(body: str) -> Iterator[Upload]:
    """The uploads in one SQS message whose body is an S3 event notification."""
    try:
        event = json.loads(body)
    except ValueError as e:
        raise InvalidArgument(f"SQS message body is not JSON: {e}") from e
    if not isinstance(event, dict):
        raise InvalidArgument("SQS message body is not an S3 event notification")
    yield from uploads_from_s3_event(event)
