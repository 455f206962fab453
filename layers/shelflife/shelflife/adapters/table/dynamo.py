"""The repository on DynamoDB, through the pynamodb models."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import (
    DeleteError,
    PutError,
    PynamoDBException,
    TransactWriteError,
    UpdateError,
)
from pynamodb.pagination import ResultIterator
from pynamodb.transactions import TransactWrite

from shelflife.adapters.table.models import (
    BUCKET_PK,
    CAPTURE_SK,
    CLEANUP_PK,
    DAILY_PK,
    IMAGE_SK,
    UPLOAD_SK,
    BucketModel,
    CaptureModel,
    CleanupModel,
    DailyModel,
    ImageModel,
    RunModel,
    UploadOutcomeModel,
    bind_table,
    bucket_sk,
    image_pk,
    run_pk,
    run_sk,
    upload_pk,
)
from shelflife.domain.capture import Capture
from shelflife.domain.errors import (
    BackendUnavailable,
    Conflict,
    InvalidArgument,
    NoRoom,
    RecordNotFound,
    Throttled,
)
from shelflife.domain.records import (
    DAILY_COUNTERS,
    BucketRecord,
    BucketStatus,
    Change,
    ChangeAction,
    CleanupStatus,
    CleanupTask,
    DailyCounts,
    ImageRecord,
    ImageState,
    Location,
    Page,
    RunKind,
    RunRecord,
    RunStatus,
    StreamChange,
    UploadOutcome,
    UploadState,
    Variant,
    due_shard,
    released_objects,
    variant_key,
    variant_token,
)
from shelflife.domain.repository import Repository, counter_changes, single_write
from shelflife.domain.settings import BackendName, Settings, TierName

DAILY_COUNT_DAYS = 400
# Items a scan request evaluates (DynamoDB stops at 1 MB whatever this says).
_SCAN_PAGE = 1000

_THROTTLING = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
}


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


# A cursor is checked before it reaches DynamoDB: a crafted one made botocore raise
# (a 500) or DynamoDB refuse the request (a 503 with its error text).
_MAX_CURSOR_VALUE = 1024


def _decode_cursor(cursor: str | None, index: str, partition: str) -> dict[str, Any] | None:
    """The ``LastEvaluatedKey`` a cursor from ``_encode_cursor`` holds, checked against
    the query it belongs to: the table's key and the ``index``'s key, every value a
    string, the index's partition the one queried (``partition``), the item an image.
    ``InvalidArgument`` (a 400) for anything else."""
    if not cursor:
        return None
    index_keys = _INDEX_KEYS[index]
    key = _string_key(cursor, {"pk", "sk", *index_keys})
    if (
        key[index_keys[0]]["S"] != partition
        or key["sk"]["S"] != IMAGE_SK
        or not key["pk"]["S"].startswith(image_pk(""))
    ):
        raise InvalidArgument("invalid page cursor: it belongs to another query, or is not one")
    return key


def _string_key(cursor: str, names: set[str]) -> dict[str, Any]:
    """The key a cursor holds, if it has exactly ``names``, each a string value of a
    sane length; ``InvalidArgument`` otherwise."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeError) as e:
        raise InvalidArgument("invalid page cursor") from e
    if (
        not isinstance(key, dict)
        or set(key) != names
        or not all(_is_string_value(value) for value in key.values())
    ):
        raise InvalidArgument("invalid page cursor: it belongs to another query, or is not one")
    return key


def _is_string_value(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"S"}
        and isinstance(value["S"], str)
        and 0 < len(value["S"]) <= _MAX_CURSOR_VALUE
    )


# Each queried index's hash and range key (the LastEvaluatedKey adds the table's).
_INDEX_KEYS = {
    "by_owner": ("owner", "uploaded_at"),
    "by_due": ("due_shard", "due_at"),
}
# A scan's cursor names the bucket it reads (a cursor of another bucket's scan is
# refused), beside the table's key it stopped at (any item's: a scan reads them all).
_SCAN_BUCKET = "scan_bucket"
# What a scan of every image record names in its cursor (no bucket is called so: a
# bucket's is "<tier>#<name>").
_EVERY_IMAGE = "*"


def _encode_scan_cursor(bucket: str, key: dict[str, Any] | None) -> str | None:
    return _encode_cursor({**key, _SCAN_BUCKET: {"S": bucket}}) if key else None


def _decode_scan_cursor(cursor: str | None, bucket: str) -> dict[str, Any] | None:
    """The table's key a cursor from ``_encode_scan_cursor`` holds, checked as
    ``_decode_cursor`` checks a query's: ``InvalidArgument`` for anything else."""
    if not cursor:
        return None
    key = _string_key(cursor, {"pk", "sk", _SCAN_BUCKET})
    if key.pop(_SCAN_BUCKET)["S"] != bucket:
        raise InvalidArgument("invalid page cursor: it belongs to another query, or is not one")
    return key


@contextlib.contextmanager
def _no_room(limited: Mapping[int, str]) -> Iterator[None]:
    """``NoRoom`` for a transaction cancelled by the limit of a bucket in ``limited``
    (its item's index -> its name); any other failure as it was."""
    try:
        yield
    except TransactWriteError as e:
        reasons = getattr(e, "cancellation_reasons", None) or []
        for index, bucket in limited.items():
            reason = reasons[index] if index < len(reasons) else None
            if reason is not None and reason.code == "ConditionalCheckFailed":
                raise NoRoom(f"bucket {bucket!r} has no room left", bucket=bucket) from e
        raise


def _daily_actions(day: date, counts: Mapping[str, int]) -> list[Any]:
    """The update that adds ``counts`` to ``day``'s counters item."""
    # Counters outlive the metrics window that reads them (a year at most).
    expires = datetime.combine(day + timedelta(days=DAILY_COUNT_DAYS), datetime.min.time())
    actions: list[Any] = [
        getattr(DailyModel, name).add(value) for name, value in sorted(counts.items())
    ]
    actions.append(DailyModel.expires_at.set(expires.replace(tzinfo=UTC)))
    return actions


def _location(
    tier: str | None, backend: str | None, bucket: str | None, key: str | None
) -> Location | None:
    if not (tier and backend and bucket and key):
        return None
    return Location(tier=TierName(tier), backend=BackendName(backend), bucket=bucket, key=key)


def image_from_stream(item: Mapping[str, Any] | None) -> ImageRecord | None:
    """An image record from an item as the table's stream shows it (``NewImage`` or
    ``OldImage``, in DynamoDB's typed JSON); None for no item or an item that is not an
    image record (buckets, runs, cleanup tasks, idempotency records)."""
    if not item or item.get("sk", {}).get("S") != IMAGE_SK:
        return None
    return image_record(ImageModel.from_raw_data(dict(item)))


def stream_change(record: Mapping[str, Any]) -> StreamChange:
    """A DynamoDB stream record (Lambda's shape) as the change of image records it
    shows; ``InvalidArgument`` for one that is not a stream record."""
    try:
        event_id = str(record["eventID"])
        images = record["dynamodb"]
        old = image_from_stream(images.get("OldImage"))
        new = image_from_stream(images.get("NewImage"))
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise InvalidArgument(f"not a DynamoDB stream record: {e!r}") from e
    return StreamChange(event_id=event_id, old=old, new=new, raw=record)


def _change(model: ImageModel) -> Change | None:
    if not (model.change_action and model.change_actor and model.change_at):
        return None
    return Change(
        action=ChangeAction(model.change_action),
        actor=model.change_actor,
        at=model.change_at,
        reason=model.change_reason,
    )


def upload_outcome_model(outcome: UploadOutcome) -> UploadOutcomeModel:
    """The item of what became of an upload."""
    return UploadOutcomeModel(
        upload_pk(outcome.upload_id),
        UPLOAD_SK,
        owner=outcome.owner,
        state=outcome.state.value,
        photo_id=outcome.photo_id,
        filename=outcome.filename,
        reason=outcome.reason,
        at=outcome.at,
        expires_at=outcome.expires_at,
    )


def variants_place(tier: str, bucket: str) -> str:
    """The item's flat mark of where its variants are, for the bucket scan's filter."""
    return f"{tier}/{bucket}"


def _variants(model: ImageModel) -> tuple[Variant, ...]:
    """``image_model``'s compact variants, as records."""
    if not model.variants or not model.variants_place:
        return ()
    tier, _, bucket = model.variants_place.partition("/")
    return tuple(
        Variant(
            name=name,
            location=Location(
                tier=TierName(tier),
                backend=BackendName(model.variants["backend"]),
                bucket=bucket,
                key=variant_key(model.id, name, token),
            ),
            size=int(size),
        )
        for name, token, size in model.variants["items"]
    )


def image_record(model: ImageModel) -> ImageRecord:
    """The record an item holds (``image_model``'s inverse)."""
    return ImageRecord.model_validate(
        {
            **{
                name: getattr(model, name)
                for name in ImageRecord.model_fields
                if name
                not in {"location", "move_to", "next_action", "due_at", "change", "variants"}
            },
            "variants": _variants(model),
            "change": _change(model),
            "location": _location(model.tier, model.backend, model.bucket, model.key),
            "move_to": _location(
                model.move_tier, model.move_backend, model.move_bucket, model.move_key
            ),
            "next_action": model.next_action,
            "due_at": model.due_at if model.next_action else None,
            "original_size": int(model.original_size),
            "stored_size": int(model.stored_size),
            "access_count": int(model.access_count),
            "placed_access_count": int(model.placed_access_count or 0),
            "width": int(model.width) if model.width is not None else None,
            "height": int(model.height) if model.height is not None else None,
        }
    )


def image_model(image: ImageRecord, *, due_shards: int, released: int = 0) -> ImageModel:
    """The item of ``image``; ``released``: how many objects the write lets go of."""
    location, move, variants = image.location, image.move_to, image.variants_bucket
    scheduled = image.next_action is not None and image.due_at is not None
    model = ImageModel(
        image_pk(image.id),
        IMAGE_SK,
        id=image.id,
        owner=image.owner,
        draft_id=image.draft_id,
        state=image.state.value,
        tier=location.tier.value if location else None,
        backend=location.backend.value if location else None,
        bucket=location.bucket if location else None,
        key=location.key if location else None,
        original_size=image.original_size,
        stored_size=image.stored_size,
        original_sha256=image.original_sha256,
        stored_sha256=image.stored_sha256,
        width=image.width,
        height=image.height,
        format=image.format,
        uploaded_at=image.uploaded_at,
        last_accessed_at=image.last_accessed_at,
        access_count=image.access_count,
        published_at=image.published_at,
        placed_at=image.placed_at,
        placed_access_count=image.placed_access_count,
        move_tier=move.tier.value if move else None,
        move_backend=move.backend.value if move else None,
        move_bucket=move.bucket if move else None,
        move_key=move.key if move else None,
        archive_skipped_at=image.archive_skipped_at,
        promoted_at=image.promoted_at,
        next_action=image.next_action.value if image.next_action else None,
        # The due index is sparse: only scheduled images carry its keys.
        due_at=image.due_at if scheduled else None,
        due_shard=str(due_shard(image.id, due_shards)) if scheduled else None,
        rejection_reason=image.rejection_reason,
        quarantine_key=image.quarantine_key,
        source_key=image.source_key,
        filename=image.filename,
        duplicated_at=image.duplicated_at,
        # Compact (the owner index projects every attribute, so each byte is stored
        # twice and weighs on every write of the record): the backend once, then each
        # variant's name, key token and size; the tier and bucket are variants_place.
        variants=(
            {
                "backend": variants.backend.value,
                "items": [[v.name, variant_token(v.location.key), v.size] for v in image.variants],
            }
            if variants
            else None
        ),
        variants_place=variants_place(variants.tier.value, variants.bucket) if variants else None,
        expires_at=image.expires_at,
        released=released or None,
        change_action=image.change.action.value if image.change else None,
        change_actor=image.change.actor if image.change else None,
        change_at=image.change.at if image.change else None,
        change_reason=image.change.reason if image.change else None,
    )
    if image.version is not None:  # None: a new record, written only if absent
        model.version = image.version
    return model


def run_model(run: RunRecord) -> RunModel:
    return RunModel(
        run_pk(run.kind.value),
        run_sk(run.started_at, run.id),
        kind=run.kind.value,
        id=run.id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=run.status.value,
        dry_run=run.dry_run,
        counts=dict(run.counts),
        cursor=run.cursor,
        details=run.details,
        expires_at=run.expires_at,
    )


def _next_version(image: ImageRecord) -> ImageRecord:
    """``image`` as written: pynamodb wrote its version plus one."""
    return image.model_copy(update={"version": (image.version or 0) + 1})


def stream_record(
    event_id: str, old: ImageRecord | None, new: ImageRecord | None, *, due_shards: int = 4
) -> dict[str, Any]:
    """A change of one image record as Lambda delivers the table's stream
    (NEW_AND_OLD_IMAGES): for playing the stream from the in-memory table."""
    image = new or old
    assert image is not None
    released = len(released_objects(old, new))
    images: dict[str, Any] = {
        "Keys": {"pk": {"S": image_pk(image.id)}, "sk": {"S": IMAGE_SK}},
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if old is not None:
        images["OldImage"] = image_model(old, due_shards=due_shards).serialize()
    if new is not None:
        images["NewImage"] = image_model(new, due_shards=due_shards, released=released).serialize()
    return {
        "eventID": event_id,
        "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
        "eventSource": "aws:dynamodb",
        "dynamodb": images,
    }


class DynamoRepository(Repository):
    def __init__(
        self,
        table_name: str,
        *,
        region: str | None = None,
        host: str | None = None,
        due_shards: int = 4,
    ) -> None:
        super().__init__(due_shards=due_shards)
        bind_table(table_name, region=region, host=host)
        self.table_name = table_name
        self._connection = Connection(region=region, host=host)

    @classmethod
    def from_settings(cls, settings: Settings, *, host: str | None = None) -> DynamoRepository:
        return cls(
            settings.table_name, region=settings.region, host=host, due_shards=settings.due_shards
        )

    # ---- images ------------------------------------------------------------------

    def find_image(self, image_id: str) -> ImageRecord | None:
        with self._translated(f"image {image_id!r}"):
            try:
                model = ImageModel.get(image_pk(image_id), IMAGE_SK, consistent_read=True)
            except ImageModel.DoesNotExist:
                return None
        return image_record(model)

    def find_images(self, image_ids: Iterable[str]) -> dict[str, ImageRecord]:
        keys = [(image_pk(image_id), IMAGE_SK) for image_id in dict.fromkeys(image_ids)]
        if not keys:
            return {}
        with self._translated(f"{len(keys)} images"):
            # pynamodb splits the keys into BatchGetItem requests of 100 and retries
            # what DynamoDB left unprocessed.
            models = list(ImageModel.batch_get(keys, consistent_read=True))
        return {model.id: image_record(model) for model in models}

    def _images_by_owner(self, owner: str, *, limit: int, cursor: str | None) -> Page[ImageRecord]:
        results = ImageModel.by_owner.query(
            owner,
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=_decode_cursor(cursor, "by_owner", owner),
        )
        return self._page(results, f"images of {owner!r}")

    def _due_images(
        self, shard: int, now: datetime, *, limit: int, cursor: str | None
    ) -> Page[ImageRecord]:
        results = ImageModel.by_due.query(
            str(shard),
            range_key_condition=ImageModel.due_at <= now,
            limit=limit,
            last_evaluated_key=_decode_cursor(cursor, "by_due", str(shard)),
        )
        return self._page(results, f"due images of shard {shard}")

    def _all_images(self, *, limit: int, cursor: str | None) -> Page[ImageRecord]:
        results = ImageModel.scan(
            filter_condition=ImageModel.sk == IMAGE_SK,
            limit=limit,
            page_size=_SCAN_PAGE,
            last_evaluated_key=_decode_scan_cursor(cursor, _EVERY_IMAGE),
        )
        with self._translated("every image"):
            items = [image_record(model) for model in results]
        return Page(
            items=items, cursor=_encode_scan_cursor(_EVERY_IMAGE, results.last_evaluated_key)
        )

    def _images_in_bucket(
        self,
        tier: str,
        bucket: str,
        *,
        uploaded_before: datetime | None,
        with_variants: bool,
        limit: int,
        cursor: str | None,
    ) -> Page[ImageRecord]:
        # A scan, filtered on the live records of the bucket: there is no index by
        # bucket (``models``), and these reads are rare. A request reads up to 1 MB
        # of the table; the iterator goes on until ``limit`` records match.
        where = (ImageModel.tier == tier) & (ImageModel.bucket == bucket)
        if with_variants:
            where |= ImageModel.variants_place == variants_place(tier, bucket)
        condition = (
            (ImageModel.sk == IMAGE_SK) & (ImageModel.state == ImageState.ACTIVE.value) & where
        )
        if uploaded_before is not None:
            condition &= ImageModel.uploaded_at < uploaded_before
        partition = f"{tier}#{bucket}" + ("#variants" if with_variants else "")
        results = ImageModel.scan(
            filter_condition=condition,
            limit=limit,
            page_size=_SCAN_PAGE,
            last_evaluated_key=_decode_scan_cursor(cursor, partition),
        )
        with self._translated(f"images in bucket {bucket!r}"):
            items = [image_record(model) for model in results]
        key = results.last_evaluated_key
        return Page(items=items, cursor=_encode_scan_cursor(partition, key))

    def _page(self, results: ResultIterator[ImageModel], what: str) -> Page[ImageRecord]:
        with self._translated(what):
            items = [image_record(model) for model in results]
        return Page(items=items, cursor=_encode_cursor(results.last_evaluated_key))

    def _write_image(
        self,
        previous: ImageRecord | None,
        updated: ImageRecord | None,
        counts: DailyCounts | None,
        within: Mapping[str, int],
    ) -> ImageRecord | None:
        image = updated or previous
        assert image is not None
        if single_write(previous, updated, counts):
            with self._translated(f"image {image.id!r}"):
                if updated is None:
                    assert previous is not None
                    self._model(previous).delete()  # conditional on the version read
                else:
                    self._model(updated, released=len(released_objects(previous, updated))).save()
            return None if updated is None else _next_version(updated)
        # The transaction's items in DynamoDB's order (pynamodb sends deletes, then
        # puts, then updates): the image's, then one per counter change. A bucket with a
        # limit is the item at its index here, which names it in a cancellation.
        limited: dict[int, str] = {}
        with (
            self._translated(f"image {image.id!r}"),
            _no_room(limited),
            TransactWrite(connection=self._connection) as tx,
        ):
            if updated is None:
                assert previous is not None
                tx.delete(self._model(previous))  # conditional on the version read
            else:
                # pynamodb adds the version condition (or attribute_not_exists for a
                # new record) and writes version + 1.
                released = len(released_objects(previous, updated))
                tx.save(self._model(updated, released=released))
            for index, change in enumerate(counter_changes(previous, updated), start=1):
                condition = BucketModel.pk.exists()
                limit = within.get(change.bucket)
                if limit is not None and change.bytes > 0:
                    # roomy(), as a condition: DynamoDB compares, it does not add.
                    limited[index] = change.bucket
                    condition &= (BucketModel.used_bytes <= limit - change.bytes) | (
                        BucketModel.object_count == 0
                    )
                tx.update(
                    BucketModel(BUCKET_PK, bucket_sk(change.tier, change.bucket)),
                    actions=[
                        BucketModel.used_bytes.add(change.bytes),
                        BucketModel.object_count.add(change.objects),
                    ],
                    condition=condition,
                )
            if counts is not None:
                day = DailyModel(DAILY_PK, counts.day.isoformat())
                tx.update(day, actions=_daily_actions(counts.day, counts.counts))
        return None if updated is None else _next_version(updated)

    def _model(self, image: ImageRecord, *, released: int = 0) -> ImageModel:
        return image_model(image, due_shards=self.due_shards, released=released)

    # ---- buckets -----------------------------------------------------------------

    def add_bucket(self, bucket: BucketRecord) -> BucketRecord:
        model = BucketModel(
            BUCKET_PK,
            bucket_sk(bucket.tier.value, bucket.name),
            tier=bucket.tier.value,
            backend=bucket.backend.value,
            name=bucket.name,
            capacity_bytes=bucket.capacity_bytes,
            used_bytes=bucket.used_bytes,
            object_count=bucket.object_count,
            status=bucket.status.value,
            created_at=bucket.created_at,
        )
        with self._translated(f"bucket {bucket.name!r}"):
            model.save(condition=BucketModel.sk.does_not_exist())
        return bucket

    def list_buckets(self, tier: str | None = None) -> list[BucketRecord]:
        condition = BucketModel.sk.startswith(f"{tier}#") if tier is not None else None
        with self._translated("bucket records"):
            return [
                self._bucket(model)
                for model in BucketModel.query(
                    BUCKET_PK, range_key_condition=condition, consistent_read=True
                )
            ]

    def set_bucket_status(self, tier: str, name: str, status: BucketStatus) -> BucketRecord:
        return self._update_bucket(tier, name, [BucketModel.status.set(status.value)])

    def set_bucket_counters(
        self,
        tier: str,
        name: str,
        *,
        used_bytes: int,
        object_count: int,
        expected: tuple[int, int] | None = None,
    ) -> BucketRecord:
        actions: list[Any] = [
            BucketModel.used_bytes.set(used_bytes),
            BucketModel.object_count.set(object_count),
        ]
        if expected is None:
            return self._update_bucket(tier, name, actions)
        unchanged = (BucketModel.used_bytes == expected[0]) & (
            BucketModel.object_count == expected[1]
        )
        model = BucketModel(BUCKET_PK, bucket_sk(tier, name))
        try:
            with self._translated(f"bucket {name!r}: counters changed since they were read"):
                model.update(actions=actions, condition=unchanged)
        except Conflict:
            self.get_bucket(tier, name)  # RecordNotFound when there is no such bucket
            raise
        return self._bucket(model)

    def _update_bucket(self, tier: str, name: str, actions: list[Any]) -> BucketRecord:
        model = BucketModel(BUCKET_PK, bucket_sk(tier, name))
        try:
            with self._translated(f"bucket {name!r}"):
                model.update(actions=actions, condition=BucketModel.sk.exists())
        except Conflict as e:
            raise RecordNotFound(f"no bucket {name!r} in tier {tier!r}") from e
        return self._bucket(model)

    @staticmethod
    def _bucket(model: BucketModel) -> BucketRecord:
        return BucketRecord(
            tier=TierName(model.tier),
            backend=BackendName(model.backend),
            name=model.name,
            capacity_bytes=int(model.capacity_bytes),
            used_bytes=int(model.used_bytes),
            object_count=int(model.object_count),
            status=BucketStatus(model.status),
            created_at=model.created_at,
        )

    # ---- runs --------------------------------------------------------------------

    def save_run(self, run: RunRecord) -> RunRecord:
        with self._translated(f"run {run.id!r}"):
            run_model(run).save()
        return run

    def recent_runs(
        self, kind: RunKind, *, limit: int = 20, since: datetime | None = None
    ) -> list[RunRecord]:
        condition = RunModel.sk >= run_sk(since, "") if since is not None else None
        with self._translated(f"{kind.value} runs"):
            models = list(
                RunModel.query(
                    run_pk(kind.value),
                    range_key_condition=condition,
                    scan_index_forward=False,
                    limit=limit,
                )
            )
        return [self._run(model) for model in models]

    def find_run(self, kind: RunKind, started_at: datetime, run_id: str) -> RunRecord | None:
        with self._translated(f"run {run_id!r}"):
            try:
                model = RunModel.get(
                    run_pk(kind.value), run_sk(started_at, run_id), consistent_read=True
                )
            except RunModel.DoesNotExist:
                return None
        return self._run(model)

    @staticmethod
    def _run(model: RunModel) -> RunRecord:
        return RunRecord(
            kind=RunKind(model.kind),
            id=model.id,
            started_at=model.started_at,
            finished_at=model.finished_at,
            status=RunStatus(model.status),
            dry_run=model.dry_run,
            counts={name: int(value) for name, value in model.counts.as_dict().items()},
            cursor=model.cursor,
            details=model.details,
            expires_at=model.expires_at,
        )

    # ---- daily counts --------------------------------------------------------------

    def _add_daily_counts(self, day: date, counts: Mapping[str, int]) -> None:
        model = DailyModel(DAILY_PK, day.isoformat())
        with self._translated(f"daily counts of {day}"):
            model.update(actions=_daily_actions(day, counts))

    def daily_counts(self, since: date) -> list[DailyCounts]:
        with self._translated("daily counts"):
            models = list(DailyModel.query(DAILY_PK, DailyModel.sk >= since.isoformat()))
        return [
            DailyCounts(
                day=date.fromisoformat(model.sk),
                counts={name: int(getattr(model, name) or 0) for name in DAILY_COUNTERS},
            )
            for model in models
        ]

    # ---- capture metadata ----------------------------------------------------------

    def put_upload_outcome(self, outcome: UploadOutcome) -> None:
        with self._translated(f"upload {outcome.upload_id!r}"):
            upload_outcome_model(outcome).save()

    def find_upload_outcome(self, upload_id: str) -> UploadOutcome | None:
        with self._translated(f"upload {upload_id!r}"):
            try:
                model = UploadOutcomeModel.get(upload_pk(upload_id), UPLOAD_SK)
            except UploadOutcomeModel.DoesNotExist:
                return None
        return UploadOutcome(
            upload_id=upload_id,
            owner=model.owner,
            state=UploadState(model.state),
            photo_id=model.photo_id,
            filename=model.filename,
            reason=model.reason,
            at=model.at,
            expires_at=model.expires_at,
        )

    def put_capture(self, image_id: str, capture: Capture) -> None:
        facts = capture.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        with self._translated(f"capture of {image_id!r}"):
            CaptureModel(image_pk(image_id), CAPTURE_SK, facts=facts).save()

    def find_capture(self, image_id: str) -> Capture | None:
        with self._translated(f"capture of {image_id!r}"):
            try:
                model = CaptureModel.get(image_pk(image_id), CAPTURE_SK)
            except CaptureModel.DoesNotExist:
                return None
        return Capture.model_validate(model.facts)

    def expire_capture(self, image_id: str, at: datetime) -> None:
        capture = CaptureModel(image_pk(image_id), CAPTURE_SK)
        with contextlib.suppress(Conflict), self._translated(f"capture of {image_id!r}"):
            # Only an item that is there: an update would make one otherwise.
            capture.update(
                actions=[CaptureModel.expires_at.set(at)], condition=CaptureModel.pk.exists()
            )

    def keep_capture(self, image_id: str) -> None:
        capture = CaptureModel(image_pk(image_id), CAPTURE_SK)
        with contextlib.suppress(Conflict), self._translated(f"capture of {image_id!r}"):
            capture.update(
                actions=[CaptureModel.expires_at.remove()], condition=CaptureModel.pk.exists()
            )

    # ---- cleanup tasks -------------------------------------------------------------

    def save_cleanup_task(self, task: CleanupTask) -> CleanupTask:
        model = CleanupModel(
            CLEANUP_PK,
            task.event_id,
            image_id=task.image_id,
            status=task.status.value,
            attempts=task.attempts,
            error=task.error,
            first_failed_at=task.first_failed_at,
            updated_at=task.updated_at,
            expires_at=task.expires_at,
        )
        with self._translated(f"cleanup task {task.event_id!r}"):
            model.save()
        return task

    def find_cleanup_task(self, event_id: str) -> CleanupTask | None:
        with self._translated(f"cleanup task {event_id!r}"):
            try:
                model = CleanupModel.get(CLEANUP_PK, event_id, consistent_read=True)
            except CleanupModel.DoesNotExist:
                return None
        return self._cleanup_task(model)

    def cleanup_tasks(
        self, *, status: CleanupStatus | None = None, updated_since: datetime | None = None
    ) -> list[CleanupTask]:
        conditions = []
        if status is not None:
            conditions.append(CleanupModel.status == status.value)
        if updated_since is not None:
            conditions.append(CleanupModel.updated_at >= updated_since)
        condition = None
        for each in conditions:
            condition = each if condition is None else condition & each
        with self._translated("cleanup tasks"):
            tasks = [
                self._cleanup_task(model)
                for model in CleanupModel.query(CLEANUP_PK, filter_condition=condition)
            ]
        return sorted(tasks, key=lambda task: (task.updated_at, task.event_id), reverse=True)

    @staticmethod
    def _cleanup_task(model: CleanupModel) -> CleanupTask:
        return CleanupTask(
            event_id=model.sk,
            image_id=model.image_id,
            status=CleanupStatus(model.status),
            attempts=int(model.attempts),
            error=model.error,
            first_failed_at=model.first_failed_at,
            updated_at=model.updated_at,
            expires_at=model.expires_at,
        )

    # ---- errors ------------------------------------------------------------------

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except (TransactWriteError, PutError, UpdateError, DeleteError) as e:
            code = e.cause_response_code or ""
            reasons = {
                reason.code for reason in getattr(e, "cancellation_reasons", None) or [] if reason
            }
            if code == "ConditionalCheckFailedException" or "ConditionalCheckFailed" in reasons:
                raise Conflict(
                    f"{what}: changed since it was read, or its bucket is not recorded"
                ) from e
            if code == "TransactionConflictException" or "TransactionConflict" in reasons:
                raise Conflict(f"{what}: a concurrent transaction won") from e
            raise self._failure(e, what) from e
        except PynamoDBException as e:
            raise self._failure(e, what) from e

    @staticmethod
    def _failure(error: PynamoDBException, what: str) -> Exception:
        code = error.cause_response_code or ""
        if code in _THROTTLING:
            return Throttled(f"{what}: {code}", backend="dynamodb")
        return BackendUnavailable(f"{what}: {error.msg or code}", backend="dynamodb")
