"""The table's write request units, counted as DynamoDB bills them, for the writes the
DynamoDB adapter makes: what the price book's ``[stack]`` ``table_writes`` must match.

``MeteredRepository`` is the in-memory repository that also adds up, for every call,
the units the DynamoDB adapter's call would consume: the same items (``image_model``,
the adapter's own serialisation), the same choice of a transaction or a single write
(``single_write``), and DynamoDB's rules (developer guide, under
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/: "Capacity unit
consumption", "Provisioned throughput considerations for Global Secondary Indexes"
(writes), "Capacity management for transactions"):

- a write costs one unit per started KB of the larger of the item before and after;
  in a transaction, two;
- each global secondary index the item is in before or after costs one more write
  (per started KB of the index entry), two when the write changes the index's key (a
  delete and a put), none when the item is in it neither before nor after or when
  nothing the index projects changed. An index that projects ALL sees every write
  change something (the version at least). Index writes are
  counted once, not doubled in a transaction: the documentation doubles the
  transaction's reads and writes of the table's items, and propagates index writes as
  for any write.

Item sizes follow DynamoDB's rules: the attribute's name in UTF-8 plus its value
(strings in UTF-8, a number about one byte per two significant digits plus one, 1 for a
boolean or null, 3 plus the elements for a map or list).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shelflife.adapters.table.dynamo import image_model, run_model, upload_outcome_model
from shelflife.adapters.table.memory import MemoryRepository
from shelflife.adapters.table.models import (
    CAPTURE_SK,
    CaptureModel,
    image_pk,
    table_schema,
)
from shelflife.domain.capture import Capture
from shelflife.domain.records import (
    BucketRecord,
    BucketStatus,
    DailyCounts,
    ImageRecord,
    RunRecord,
    UploadOutcome,
    released_objects,
)
from shelflife.domain.repository import counter_changes, single_write

KB = 1024
# A bucket's or a day's counters item: well under 1 KB whatever it holds.
SMALL_ITEM_UNITS = 1


def value_size(value: Mapping[str, Any]) -> int:
    """The size DynamoDB counts for one attribute value (low-level JSON form)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: v}) for v in inner)
    raise ValueError(f"unknown attribute type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def kilobytes(size: int) -> int:
    return max(1, math.ceil(size / KB))


@dataclass(frozen=True)
class Index:
    keys: tuple[str, ...]
    # The attributes its entries carry besides the keys (every one for ALL).
    projected: tuple[str, ...] | None

    def entry(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        """``item``'s entry in the index, or None when the item is not in it."""
        if not all(k in item for k in self.keys):
            return None
        if self.projected is None:
            return dict(item)
        names = {*self.keys, *TABLE_KEYS, *self.projected}
        return {name: value for name, value in item.items() if name in names}


TABLE_KEYS = ("pk", "sk")


def _indexes() -> dict[str, Index]:
    indexes = {}
    for index in table_schema()["GlobalSecondaryIndexes"]:
        projection = index["Projection"]
        kind = projection["ProjectionType"]
        projected = None if kind == "ALL" else tuple(projection.get("NonKeyAttributes", ()))
        keys = tuple(key["AttributeName"] for key in index["KeySchema"])
        indexes[index["IndexName"]] = Index(keys, projected)
    return indexes


INDEXES = _indexes()


def item_write_units(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    transaction: bool,
    indexes: Mapping[str, Index] | None = None,
) -> int:
    """Units of writing ``after`` over ``before`` (None: absent), ``indexes`` (the
    table's) included."""
    sizes = [item_size(item) for item in (before, after) if item is not None]
    units = kilobytes(max(sizes)) * (2 if transaction else 1)
    for index in (INDEXES if indexes is None else indexes).values():
        old, new = index.entry(before or {}), index.entry(after or {})
        if old is not None and new is not None:
            moved = any(old[k] != new[k] for k in index.keys)
            if moved:  # a delete and a put
                units += kilobytes(item_size(old)) + kilobytes(item_size(new))
            elif old != new:  # a projected attribute changed
                units += kilobytes(item_size(new))
        elif old is not None:
            units += kilobytes(item_size(old))
        elif new is not None:
            units += kilobytes(item_size(new))
    return units


# What DynamoDB adds to each item and each index entry it stores (storage only).
STORAGE_OVERHEAD = 100


def stored_bytes(item: Mapping[str, Any], indexes: Mapping[str, Index] | None = None) -> int:
    """What the table stores for ``item``: the item and its entry in each index it is
    in, each with the per-item overhead."""
    entries = [item]
    for index in (INDEXES if indexes is None else indexes).values():
        entry = index.entry(item)
        if entry is not None:
            entries.append(entry)
    return sum(item_size(entry) + STORAGE_OVERHEAD for entry in entries)


class MeteredRepository(MemoryRepository):
    """The in-memory repository, adding up the write units the DynamoDB adapter would
    consume for the same calls (``units``, and the runs' records in ``run_units``;
    reset them between events)."""

    def __init__(self, *, due_shards: int = 4) -> None:
        super().__init__(due_shards=due_shards)
        self.units = 0
        # The scheduled runs' own records, apart: the book prices them with the run.
        self.run_units = 0
        # Each image's own writes (with the counters they move), by image id.
        self.by_image: Counter[str] = Counter()
        # Writes that stamped a change, by image id: each is an entry the audit
        # function writes (``domain.audit``).
        self.entries: Counter[str] = Counter()

    def item(self, image: ImageRecord, released: int = 0) -> dict[str, Any]:
        """``image``'s item as the DynamoDB adapter writes it."""
        item: dict[str, Any] = image_model(
            image, due_shards=self.due_shards, released=released
        ).serialize()
        item["version"] = {"N": str((image.version or 0) + 1)}
        return item

    def _write_image(
        self,
        previous: ImageRecord | None,
        updated: ImageRecord | None,
        counts: DailyCounts | None,
        within: Mapping[str, int],
    ) -> ImageRecord | None:
        written = super()._write_image(previous, updated, counts, within)
        single = single_write(previous, updated, counts)
        released = len(released_objects(previous, updated)) if updated is not None else 0
        units = item_write_units(
            None if previous is None else self.item(previous),
            None if updated is None else self.item(updated, released),
            transaction=not single,
        )
        if not single:
            changes = len(counter_changes(previous, updated)) + (counts is not None)
            units += 2 * SMALL_ITEM_UNITS * changes
        self.units += units
        image = updated or previous
        assert image is not None
        if updated is not None and updated.change is not None:
            self.entries[image.id] += 1
        self.by_image[image.id] += units
        return written

    def capture_item(self, image_id: str) -> dict[str, Any]:
        """The capture facts' item as the DynamoDB adapter writes it."""
        capture = self.captures[image_id]
        facts = capture.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        item: dict[str, Any] = CaptureModel(image_pk(image_id), CAPTURE_SK, facts=facts).serialize()
        return item

    def put_capture(self, image_id: str, capture: Capture) -> None:
        super().put_capture(image_id, capture)
        units = kilobytes(item_size(self.capture_item(image_id)))
        self.units += units
        self.by_image[image_id] += units

    def put_upload_outcome(self, outcome: UploadOutcome) -> None:
        """What became of an upload: one small item (``GET /uploads/{id}``)."""
        super().put_upload_outcome(outcome)
        self.units += kilobytes(item_size(upload_outcome_model(outcome).serialize()))

    def expire_capture(self, image_id: str, at: datetime) -> None:
        if image_id in self.captures:  # an update of the item (its expiry)
            units = kilobytes(item_size(self.capture_item(image_id)))
            self.units += units
            self.by_image[image_id] += units
        super().expire_capture(image_id, at)

    def keep_capture(self, image_id: str) -> None:
        if image_id in self.captures:  # an update of the item (its expiry removed)
            units = kilobytes(item_size(self.capture_item(image_id)))
            self.units += units
            self.by_image[image_id] += units
        super().keep_capture(image_id)

    def _add_daily_counts(self, day: date, counts: Mapping[str, int]) -> None:
        super()._add_daily_counts(day, counts)
        self.units += SMALL_ITEM_UNITS

    def add_bucket(self, bucket: BucketRecord) -> BucketRecord:
        self.units += SMALL_ITEM_UNITS
        return super().add_bucket(bucket)

    def set_bucket_status(self, tier: str, name: str, status: BucketStatus) -> BucketRecord:
        self.units += SMALL_ITEM_UNITS
        return super().set_bucket_status(tier, name, status)

    def save_run(self, run: RunRecord) -> RunRecord:
        self.run_units += kilobytes(item_size(run_model(run).serialize()))
        return super().save_run(run)
