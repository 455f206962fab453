"""pynamodb models of the single table.

| item    | pk               | sk                         |
|---------|------------------|----------------------------|
| image   | IMAGE#<id>       | IMAGE                      |
| capture | IMAGE#<id>       | CAPTURE                    |
| bucket  | BUCKET           | <tier>#<name>              |
| run     | RUN#<kind>       | <started at, ISO>#<run id> |
| cleanup | CLEANUP          | <stream record's event id> |
| daily   | DAILY            | <day, ISO>                 |

All bucket records share one partition, so a capacity check is one query whatever the
number of images. The two indexes are sparse: only image records carry their keys,
and only scheduled images carry the due index's keys, so a sweep reads only what is due.
Each projects ALL, and so each costs a write on every write of an image in it
(tests/unit/test_table_units.py); an index earns its place only where a frequent read
needs it:

- no index by content: an image's id is derived from its owner and the hash of its
  upload, so deduplication is a get, and no two records ever point at one object (a
  key is unique to its placement), so cleanup has no other record to look for;
- no index by bucket: only a capacity cleanup (a bucket past 85 %) and the reconciler
  (an admin's run) ask for a bucket's records, rarely, and a scan of the table serves
  them (``Repository.images_in_bucket``); every upload, publish, move and deletion
  would pay for the index (a move two writes: its key changes).

``template.yaml`` declares the same table; tests/unit/test_template.py compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

IMAGE_SK = "IMAGE"
CAPTURE_SK = "CAPTURE"
UPLOAD_SK = "UPLOAD"
BUCKET_PK = "BUCKET"
CLEANUP_PK = "CLEANUP"
DAILY_PK = "DAILY"


def image_pk(image_id: str) -> str:
    return f"IMAGE#{image_id}"


def upload_pk(upload_id: str) -> str:
    return f"UPLOAD#{upload_id}"


def bucket_sk(tier: str, name: str) -> str:
    return f"{tier}#{name}"


def run_pk(kind: str) -> str:
    return f"RUN#{kind}"


def run_sk(started_at: datetime, run_id: str) -> str:
    # UTC ISO times sort as the times do, so "runs since T" is one key condition.
    return f"{started_at.astimezone(UTC).isoformat()}#{run_id}"


class _TableMeta:
    # Bound to the real table by ``bind_table`` before first use.
    table_name = "shelflife-unbound"
    region: str | None = None
    host: str | None = None


class DueIndex(GlobalSecondaryIndex["ImageModel"]):
    class Meta:
        index_name = "by_due"
        projection = AllProjection()

    due_shard = UnicodeAttribute(hash_key=True)
    due_at = UTCDateTimeAttribute(range_key=True)


class OwnerIndex(GlobalSecondaryIndex["ImageModel"]):
    class Meta:
        index_name = "by_owner"
        projection = AllProjection()

    owner = UnicodeAttribute(hash_key=True)
    uploaded_at = UTCDateTimeAttribute(range_key=True)


class ImageModel(Model):
    class Meta(_TableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=IMAGE_SK)
    id = UnicodeAttribute()
    owner = UnicodeAttribute()
    draft_id = UnicodeAttribute(null=True)
    state = UnicodeAttribute()
    tier = UnicodeAttribute(null=True)
    backend = UnicodeAttribute(null=True)
    bucket = UnicodeAttribute(null=True)
    key = UnicodeAttribute(null=True)
    original_size = NumberAttribute(default=0)
    stored_size = NumberAttribute(default=0)
    original_sha256 = UnicodeAttribute(null=True)
    stored_sha256 = UnicodeAttribute(null=True)
    width = NumberAttribute(null=True)
    height = NumberAttribute(null=True)
    format = UnicodeAttribute(null=True)
    uploaded_at = UTCDateTimeAttribute()
    last_accessed_at = UTCDateTimeAttribute(null=True)
    access_count = NumberAttribute(default=0)
    published_at = UTCDateTimeAttribute(null=True)
    placed_at = UTCDateTimeAttribute(null=True)
    placed_access_count = NumberAttribute(default=0)
    # A move's claimed destination (``ImageRecord.move_to``), flat like the location.
    move_tier = UnicodeAttribute(null=True)
    move_backend = UnicodeAttribute(null=True)
    move_bucket = UnicodeAttribute(null=True)
    move_key = UnicodeAttribute(null=True)
    archive_skipped_at = UTCDateTimeAttribute(null=True)
    promoted_at = UTCDateTimeAttribute(null=True)
    next_action = UnicodeAttribute(null=True)
    due_at = UTCDateTimeAttribute(null=True)
    due_shard = UnicodeAttribute(null=True)
    rejection_reason = UnicodeAttribute(null=True)
    quarantine_key = UnicodeAttribute(null=True)
    source_key = UnicodeAttribute(null=True)
    filename = UnicodeAttribute(null=True)
    duplicated_at = UTCDateTimeAttribute(null=True)
    # The photo's variants (``records.Variant``, as JSON: a list of small maps read
    # whole) and, flat, "<tier>/<bucket>" where they are, for the reconciler's scan.
    variants = JSONAttribute(null=True)
    variants_place = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    # How many objects this write let go of (``records.released_objects``), on the write
    # that did it only: the cleanup function's stream filter selects these changes.
    released = NumberAttribute(null=True)
    # The audited change this write made (``records.Change``), on that write only: the
    # audit function's stream filter selects these changes.
    change_action = UnicodeAttribute(null=True)
    change_actor = UnicodeAttribute(null=True)
    change_at = UTCDateTimeAttribute(null=True)
    change_reason = UnicodeAttribute(null=True)
    version = VersionAttribute()

    by_due = DueIndex()
    by_owner = OwnerIndex()


class CaptureModel(Model):
    """An image's capture facts (``domain.capture.Capture``), beside its record."""

    class Meta(_TableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=CAPTURE_SK)
    facts = JSONAttribute()
    # Set when the image is deleted: the TTL removes the facts with the record.
    expires_at = TTLAttribute(null=True)


class UploadOutcomeModel(Model):
    """What became of one upload (``records.UploadOutcome``), for a week."""

    class Meta(_TableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=UPLOAD_SK)
    owner = UnicodeAttribute()
    state = UnicodeAttribute()
    photo_id = UnicodeAttribute()
    filename = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute()
    expires_at = TTLAttribute(null=True)


class BucketModel(Model):
    class Meta(_TableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True, default=BUCKET_PK)
    sk = UnicodeAttribute(range_key=True)
    tier = UnicodeAttribute()
    backend = UnicodeAttribute()
    name = UnicodeAttribute()
    capacity_bytes = NumberAttribute()
    # Atomic counters, moved in the same transaction as the image records they count.
    used_bytes = NumberAttribute(default=0)
    object_count = NumberAttribute(default=0)
    status = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


class RunModel(Model):
    class Meta(_TableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    id = UnicodeAttribute()
    started_at = UTCDateTimeAttribute()
    finished_at = UTCDateTimeAttribute(null=True)
    status = UnicodeAttribute()
    dry_run = BooleanAttribute(default=False)
    counts: MapAttribute[str, Any] = MapAttribute(default=dict)
    cursor = UnicodeAttribute(null=True)
    details = JSONAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class CleanupModel(Model):
    """A cleanup that failed at least once (``records.CleanupTask``). Failures only, so
    one partition holds them; the TTL keeps it small."""

    class Meta(_TableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True, default=CLEANUP_PK)
    sk = UnicodeAttribute(range_key=True)
    image_id = UnicodeAttribute()
    status = UnicodeAttribute()
    attempts = NumberAttribute()
    error = UnicodeAttribute()
    first_failed_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute(null=True)


class DailyModel(Model):
    """Counters of one day (``records.DailyCounts``), added to atomically."""

    class Meta(_TableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True, default=DAILY_PK)
    sk = UnicodeAttribute(range_key=True)
    uploaded = NumberAttribute(null=True)
    duplicates = NumberAttribute(null=True)
    rejected = NumberAttribute(null=True)
    deleted_by_owner = NumberAttribute(null=True)
    published = NumberAttribute(null=True)
    published_views = NumberAttribute(null=True)
    published_bytes = NumberAttribute(null=True)
    imported = NumberAttribute(null=True)
    # records.PUBLISH_AGE_COUNTERS (a test holds them equal)
    published_within_1d = NumberAttribute(null=True)
    published_within_2d = NumberAttribute(null=True)
    published_within_3d = NumberAttribute(null=True)
    published_within_5d = NumberAttribute(null=True)
    published_within_7d = NumberAttribute(null=True)
    published_within_10d = NumberAttribute(null=True)
    published_within_14d = NumberAttribute(null=True)
    published_within_21d = NumberAttribute(null=True)
    published_within_30d = NumberAttribute(null=True)
    published_within_60d = NumberAttribute(null=True)
    published_within_90d = NumberAttribute(null=True)
    published_after_90d = NumberAttribute(null=True)
    expires_at = TTLAttribute(null=True)


MODELS: tuple[type[Model], ...] = (
    ImageModel,
    CaptureModel,
    UploadOutcomeModel,
    BucketModel,
    RunModel,
    CleanupModel,
    DailyModel,
)
TTL_ATTRIBUTE = "expires_at"


def bind_table(table_name: str, *, region: str | None = None, host: str | None = None) -> None:
    """Point every model at ``table_name``. pynamodb keeps the table name on the model
    class, so one process serves one table; that is the Lambda model, and tests bind
    the same name before each use."""
    for model in MODELS:
        meta: Any = model.Meta
        meta.table_name = table_name
        meta.region = region
        meta.host = host
        model._connection = None  # rebuilt from Meta on next use


def _hash_first(keys: list[Any]) -> list[dict[str, str]]:
    # DynamoDB wants the hash key first; pynamodb lists keys in declaration order.
    return sorted((dict(key) for key in keys), key=lambda key: key["KeyType"] != "HASH")


def table_schema() -> dict[str, Any]:
    """The union of the models' keys, attribute definitions and indexes, in the shape
    of DynamoDB's CreateTable."""
    attributes: dict[str, str] = {}
    indexes: dict[str, dict[str, Any]] = {}
    key_schema: list[Any] = []
    for model in MODELS:
        schema = model._get_schema()
        key_schema = key_schema or _hash_first(schema["key_schema"])
        if _hash_first(schema["key_schema"]) != key_schema:
            raise AssertionError(f"{model.__name__} has another primary key than the table")
        for definition in schema["attribute_definitions"]:
            attributes[definition["AttributeName"]] = definition["AttributeType"]
        for index in schema["global_secondary_indexes"]:
            indexes[index["index_name"]] = {
                "IndexName": index["index_name"],
                "KeySchema": _hash_first(index["key_schema"]),
                "Projection": index["projection"],
            }
    return {
        "KeySchema": key_schema,
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in sorted(attributes.items())
        ],
        "GlobalSecondaryIndexes": [indexes[name] for name in sorted(indexes)],
    }
