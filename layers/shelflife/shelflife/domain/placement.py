"""Placement's rules, as pure functions of the bucket records' counters: which bucket
of a tier takes an object, and how overflow buckets are named. The service that reads
the counters and opens buckets is ``shelflife.services.placement``."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable

from shelflife.domain.records import BucketRecord, BucketStatus


def overflow_number(name: str, base: str) -> int | None:
    """0 for the tier's first bucket, N for ``<base>-N``, None for other names."""
    if name == base:
        return 0
    suffix = name.removeprefix(f"{base}-")
    if suffix != name and suffix.isdigit() and not suffix.startswith("0"):
        return int(suffix)
    return None


def active(buckets: Iterable[BucketRecord], exclude: Collection[str] = ()) -> list[BucketRecord]:
    return [b for b in buckets if b.status is BucketStatus.ACTIVE and b.name not in exclude]


def fill(bucket: BucketRecord, size: int = 0) -> float:
    """The fraction of ``bucket`` in use once ``size`` more bytes are in it."""
    return (bucket.used_bytes + size) / bucket.capacity_bytes


def limit(bucket: BucketRecord, overflow_threshold_percent: float) -> int:
    """The most bytes ``bucket`` may hold: its overflow threshold."""
    return math.floor(bucket.capacity_bytes * overflow_threshold_percent / 100)


def has_room(bucket: BucketRecord, size: int, overflow_threshold_percent: float) -> bool:
    """Whether ``size`` more bytes keep ``bucket`` at or under the overflow threshold
    (an empty bucket takes anything: an image larger than that is placed alone). The
    activation that counts them checks the same (``repository.roomy``): placements
    running at once choose on the same counters."""
    most = limit(bucket, overflow_threshold_percent)
    return bucket.object_count == 0 or bucket.used_bytes + size <= most


def least_full(
    buckets: Iterable[BucketRecord],
    size: int,
    overflow_threshold_percent: float,
    *,
    exclude: Collection[str] = (),
) -> BucketRecord | None:
    """The active bucket that is least full once ``size`` more bytes are in it, among
    those that stay under the overflow threshold with them (ties: by name); None if no
    bucket has room. A bucket is never filled past its threshold between two capacity
    checks (issue 19: a burst took one to 104.6 %)."""
    candidates = [
        bucket
        for bucket in buckets
        if bucket.status is BucketStatus.ACTIVE
        and bucket.name not in exclude
        and has_room(bucket, size, overflow_threshold_percent)
    ]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda bucket: ((bucket.used_bytes + size) / bucket.capacity_bytes, bucket.name),
    )
