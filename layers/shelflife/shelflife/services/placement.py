"""Where a new object goes: the least-full active bucket of a tier, and the overflow
bucket that opens when none is left.

The bucket records' counters (moved in the same transaction as the image records) are
the usage; choosing a bucket costs one query, whatever the number of objects.

Opening an overflow bucket is create-then-record, both idempotent:

1. the name is the next free suffix of the tier's first bucket (``<base>-1``,
   ``<base>-2``, ...) after the recorded ones;
2. ``create_bucket`` creates it with the tier's policies, or, if this account already
   owns it, applies them again;
3. the record is added on condition that it does not exist.

Two runs at once compute the same name, both create (the second create is a no-op),
and one record wins; the loser reads it. A crash between 2 and 3 leaves a bucket
without a record: the next run computes the same name again and adopts it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING

from shelflife.domain.clock import utc_now
from shelflife.domain.errors import (
    BucketFull,
    BucketNameTaken,
    BucketNotFound,
    Conflict,
    NoBucketAvailable,
    StorageError,
)
from shelflife.domain.placement import active, fill, has_room, least_full, overflow_number
from shelflife.domain.records import BucketRecord, BucketStatus
from shelflife.domain.repository import Repository
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.domain.storage import BucketPolicy

if TYPE_CHECKING:
    from shelflife.domain.storage import Backends

# A family of buckets placed into together: a tier on one backend.
Shelf = tuple[TierName, BackendName]
# Names taken by other accounts are skipped; this many in a row means something else is
# wrong (a base name squatted on a provider with global names).
MAX_NAME_ATTEMPTS = 5


class Placement:
    def __init__(
        self,
        repository: Repository,
        settings: Settings,
        backends: Backends | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        cache_seconds: float = 0,
    ) -> None:
        self.repository = repository
        self.settings = settings
        # Without backends, placement chooses among recorded buckets but cannot open
        # an overflow bucket.
        self.backends = backends
        self.clock = clock
        # A service placing many objects in a row (the lifecycle sweep) reads the bucket
        # records once per ``cache_seconds`` rather than once per object, and counts its
        # own choices meanwhile, so they still spread over the buckets.
        self.cache_seconds = cache_seconds
        self._cache: dict[Shelf, tuple[float, list[BucketRecord]]] = {}
        self._lock = threading.Lock()

    def _shelf(self, tier: TierName, backend: BackendName | None) -> Shelf:
        return (tier, backend or self.settings.tier(tier).backend)

    def buckets(self, tier: TierName, backend: BackendName | None = None) -> list[BucketRecord]:
        """The bucket records of ``tier`` on ``backend`` (None: the tier's own; HOT
        has a second family on the serve backend, ``Settings.serve``). On first use the
        configured bucket (created by the stack) is recorded, so a fresh deployment
        places without a manual step."""
        shelf = self._shelf(tier, backend)
        with self._lock:
            cached = self._cache.get(shelf)
            if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
                return list(cached[1])
        found = self._listed(shelf)
        if not found:
            configured = self.settings.shelf(*shelf)
            with suppress(Conflict):  # a concurrent first use recorded it
                self.repository.add_bucket(self._record(shelf, configured.bucket))
            found = self._listed(shelf)
        if self.cache_seconds:
            with self._lock:
                self._cache[shelf] = (time.monotonic(), list(found))
        return found

    def _listed(self, shelf: Shelf) -> list[BucketRecord]:
        # A tier's records on another backend (HOT's serving buckets, or a tier whose
        # backend was changed) are not where this shelf places.
        return [b for b in self.repository.list_buckets(shelf[0].value) if b.backend is shelf[1]]

    def _placed(self, shelf: Shelf, chosen: BucketRecord, size: int) -> BucketRecord:
        """Count a choice in the cached records until they are read again."""
        with self._lock:
            cached = self._cache.get(shelf)
            if cached is not None:
                self._cache[shelf] = (
                    cached[0],
                    [
                        b.model_copy(
                            update={
                                "used_bytes": b.used_bytes + size,
                                "object_count": b.object_count + 1,
                            }
                        )
                        if b.name == chosen.name
                        else b
                        for b in cached[1]
                    ],
                )
        return chosen

    def _forget(self, shelf: Shelf) -> None:
        with self._lock:
            self._cache.pop(shelf, None)

    def choose(
        self,
        tier: TierName,
        size: int,
        *,
        exclude: Collection[str] = (),
        backend: BackendName | None = None,
    ) -> BucketRecord:
        """The least-full bucket of ``tier`` (on ``backend``) with room
        (``domain.placement.least_full``) by the cached counters; if none is left, the
        overflow bucket (opened here, when this placement has backends, by the same
        code as the capacity check's)."""
        shelf = self._shelf(tier, backend)
        threshold = self.settings.overflow_threshold_percent
        chosen = least_full(self.buckets(*shelf), size, threshold, exclude=exclude)
        if chosen is not None:
            return self._placed(shelf, chosen, size)
        if self.backends is None:
            skipped = f" (tried: {', '.join(sorted(exclude))})" if exclude else ""
            raise NoBucketAvailable(f"no active bucket with room in tier {tier.value!r}{skipped}")
        opened = self.open_overflow(tier, size=size, exclude=exclude, backend=shelf[1])
        return self._placed(shelf, opened, size)

    def refused(self, tier: TierName, name: str, error: StorageError) -> BucketRecord | None:
        """Record that a put into ``name`` failed for good: ``full`` when the provider
        refused the bytes, ``missing`` when the bucket is gone. Other errors change
        nothing (they are retried, not placed around)."""
        status = {BucketFull: BucketStatus.FULL, BucketNotFound: BucketStatus.MISSING}.get(
            type(error)
        )
        if status is None:
            return None
        with self._lock:
            for shelf in [shelf for shelf in self._cache if shelf[0] is tier]:
                self._cache.pop(shelf)
        return self.repository.set_bucket_status(tier.value, name, status)

    def open_overflow(
        self,
        tier: TierName,
        *,
        size: int = 0,
        exclude: Collection[str] = (),
        backend: BackendName | None = None,
    ) -> BucketRecord:
        """An active bucket of ``tier`` (on ``backend``) that stays under the overflow
        threshold with ``size`` more bytes: one that a concurrent run just opened, or a
        new ``<base>-N`` (see the module docstring)."""
        if self.backends is None:
            raise NoBucketAvailable(f"tier {tier.value!r} has no active bucket left")
        shelf = self._shelf(tier, backend)
        self._forget(shelf)  # decide on the records as they are now
        buckets = self.buckets(*shelf)
        threshold = self.settings.overflow_threshold_percent
        roomy = [
            bucket
            for bucket in active(buckets, exclude)
            if bucket.used_fraction * 100 < threshold and has_room(bucket, size, threshold)
        ]
        if roomy:
            return min(roomy, key=lambda bucket: (fill(bucket), bucket.name))
        base = self.settings.shelf(*shelf).bucket
        numbers = [overflow_number(bucket.name, base) for bucket in buckets]
        number = max((n for n in numbers if n is not None), default=0) + 1
        provider = self.backends.get(shelf[1].value)
        taken = []
        for _ in range(MAX_NAME_ATTEMPTS):
            name = f"{base}-{number}"
            try:
                provider.create_bucket(name, self.bucket_policy(tier))
            except BucketNameTaken:
                taken.append(name)
                number += 1
                continue
            try:
                return self.repository.add_bucket(self._record(shelf, name))
            except Conflict:  # a concurrent run recorded it first
                return self.repository.get_bucket(tier.value, name)
        raise NoBucketAvailable(
            f"cannot open an overflow bucket for tier {tier.value!r}: "
            f"{', '.join(taken)} belong to other accounts"
        )

    def bucket_policy(self, tier: TierName) -> BucketPolicy:
        """What every bucket of the tier gets: the stack's first buckets are declared in
        template.yaml with the same settings (tests compare the two)."""
        return BucketPolicy(tier=tier.value, cors_origins=self.settings.cors_allowed_origins)

    def _record(self, shelf: Shelf, name: str) -> BucketRecord:
        configured = self.settings.shelf(*shelf)
        return BucketRecord(
            tier=shelf[0],
            backend=shelf[1],
            name=name,
            capacity_bytes=configured.quota_bytes,
            created_at=self.clock(),
        )
