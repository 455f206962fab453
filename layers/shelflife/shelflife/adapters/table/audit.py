"""The audit trail's table (``domain.audit``): one item per entry.

| key           | value                                            |
|---------------|--------------------------------------------------|
| image_id (pk) | the image                                        |
| seq (sk)      | ``<time>#<version>`` or ``<time>#dup-<upload>``  |

A table of its own, not the images': its writes would otherwise run through the
images' stream, and its items through every scan of the images. An image's history is
a query of its partition. An admin's search is a scan, filtered, a page at a time: an
index by day would double what every entry costs (a second write, a second copy kept a
year) for a rare admin's read, as the images' table reads a bucket's records by a scan.
Items expire through the TTL.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pynamodb.attributes import TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from shelflife.domain.audit import AuditEntry, AuditLog, AuditPlace, AuditQuery
from shelflife.domain.errors import BackendUnavailable, InvalidArgument, Throttled
from shelflife.domain.records import ChangeAction, Page
from shelflife.domain.settings import TierName

_THROTTLING = {"ThrottlingException", "ProvisionedThroughputExceededException"}
# Items a scan request evaluates (DynamoDB stops at 1 MB whatever this says).
_SCAN_PAGE = 1000


class AuditModel(Model):
    class Meta:
        # Bound to the stack's audit table by ``DynamoAuditLog``.
        table_name = "shelflife-audit-unbound"
        region: str | None = None
        host: str | None = None

    image_id = UnicodeAttribute(hash_key=True)
    seq = UnicodeAttribute(range_key=True)
    at = UTCDateTimeAttribute()
    owner = UnicodeAttribute()
    actor = UnicodeAttribute()
    action = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    before_tier = UnicodeAttribute(null=True)
    before_backend = UnicodeAttribute(null=True)
    before_bucket = UnicodeAttribute(null=True)
    after_tier = UnicodeAttribute(null=True)
    after_backend = UnicodeAttribute(null=True)
    after_bucket = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


def audit_model(entry: AuditEntry) -> AuditModel:
    before, after = entry.before, entry.after
    return AuditModel(
        entry.image_id,
        entry.seq,
        at=entry.at,
        owner=entry.owner,
        actor=entry.actor,
        action=entry.action.value,
        reason=entry.reason,
        before_tier=before.tier.value if before else None,
        before_backend=before.backend if before else None,
        before_bucket=before.bucket if before else None,
        after_tier=after.tier.value if after else None,
        after_backend=after.backend if after else None,
        after_bucket=after.bucket if after else None,
        expires_at=entry.expires_at,
    )


def _place(tier: str | None, backend: str | None, bucket: str | None) -> AuditPlace | None:
    if not (tier and backend and bucket):
        return None
    return AuditPlace(tier=TierName(tier), backend=backend, bucket=bucket)


def audit_entry(model: AuditModel) -> AuditEntry:
    return AuditEntry(
        image_id=model.image_id,
        seq=model.seq,
        at=model.at,
        owner=model.owner,
        actor=model.actor,
        action=ChangeAction(model.action),
        reason=model.reason,
        before=_place(model.before_tier, model.before_backend, model.before_bucket),
        after=_place(model.after_tier, model.after_backend, model.after_bucket),
        expires_at=model.expires_at,
    )


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _decode(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeError) as e:
        raise InvalidArgument("invalid page cursor") from e


_REFUSED = "invalid page cursor: it belongs to another query, or is not one"
_MAX_VALUE = 1024


def _key(value: Any, names: set[str]) -> dict[str, Any]:
    """A ``LastEvaluatedKey`` read from a cursor: exactly ``names``, string values."""
    if not isinstance(value, dict) or set(value) != names:
        raise InvalidArgument(_REFUSED)
    for item in value.values():
        if (
            not isinstance(item, dict)
            or set(item) != {"S"}
            or not isinstance(item["S"], str)
            or not 0 < len(item["S"]) <= _MAX_VALUE
        ):
            raise InvalidArgument(_REFUSED)
    return value


class DynamoAuditLog(AuditLog):
    def __init__(self, table_name: str, *, region: str | None = None, host: str | None = None):
        meta: Any = AuditModel.Meta
        meta.table_name, meta.region, meta.host = table_name, region, host
        AuditModel._connection = None  # rebuilt from Meta on next use
        self.table_name = table_name

    def record(self, entry: AuditEntry) -> None:
        # A put of the same item again writes what is there: redelivery is harmless.
        with _translated():
            audit_model(entry).save()

    def history(self, image_id: str, *, limit: int, cursor: str | None) -> Page[AuditEntry]:
        last = None
        if cursor:
            last = _key(_decode(cursor), {"image_id", "seq"})
            if last["image_id"]["S"] != image_id:
                raise InvalidArgument(_REFUSED)
        with _translated():
            results = AuditModel.query(image_id, limit=limit, last_evaluated_key=last)
            items = [audit_entry(model) for model in results]
        following = results.last_evaluated_key
        return Page(items=items, cursor=_encode(following) if following else None)

    def search(self, query: AuditQuery, *, limit: int, cursor: str | None) -> Page[AuditEntry]:
        # A cursor names the query it belongs to: another query's is refused.
        asked = query.fingerprint()
        last = None
        if cursor:
            value = _decode(cursor)
            if not isinstance(value, dict) or set(value) != {"q", "key"} or value["q"] != asked:
                raise InvalidArgument(_REFUSED)
            last = _key(value["key"], {"image_id", "seq"})
        condition = AuditModel.at.between(query.since, query.until)
        if query.actor is not None:
            condition &= AuditModel.actor == query.actor
        if query.action is not None:
            condition &= AuditModel.action == query.action.value
        if query.image_id is not None:
            condition &= AuditModel.image_id == query.image_id
        with _translated():
            results = AuditModel.scan(
                filter_condition=condition,
                limit=limit,
                page_size=_SCAN_PAGE,
                last_evaluated_key=last,
            )
            items = [audit_entry(model) for model in results]
        following = results.last_evaluated_key
        return Page(
            items=sorted(items, key=lambda entry: (entry.at, entry.image_id, entry.seq)),
            cursor=_encode({"q": asked, "key": following}) if following else None,
        )


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except PynamoDBException as e:
        code = getattr(e, "cause_response_code", None) or ""
        if code in _THROTTLING:
            raise Throttled(f"audit table: {code}", backend="dynamodb") from e
        raise BackendUnavailable(f"audit table: {code or e.msg}", backend="dynamodb") from e
