"""Sample events from events/ (as `sam local generate-event` wrote them), with the
fields a test needs replaced. Tests never paste events inline."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any
from urllib.parse import quote_plus

from tests.support.template import ROOT

EVENTS = ROOT / "events"


@cache
def _load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of ``events/<name>``."""
    return copy.deepcopy(_load(name))


def s3_put_event(
    bucket: str, key: str, *, size: int = 1024, etag: str = "0" * 32
) -> dict[str, Any]:
    """events/ingest/s3-put.json for ``bucket/key``, the key URL-encoded as S3 does."""
    event = load_event("ingest/s3-put.json")
    s3 = event["Records"][0]["s3"]
    s3["bucket"]["name"] = bucket
    s3["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    s3["object"].update({"key": quote_plus(key, safe="/"), "size": size, "eTag": etag})
    return event


def sqs_event(*bodies: str) -> dict[str, Any]:
    """events/ingest/sqs-s3-put.json with one message per body."""
    event = load_event("ingest/sqs-s3-put.json")
    template = event["Records"][0]
    event["Records"] = [
        {**template, "messageId": f"message-{n}", "body": body} for n, body in enumerate(bodies)
    ]
    return event
