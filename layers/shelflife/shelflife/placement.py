"""Where a new object goes: the least-full active bucket of a tier.

The bucket records' counters (moved in the same transaction as the image records) are
the usage; choosing a bucket costs one query, whatever the number of objects.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import suppress
from datetime import UTC, datetime

from shelflife.errors import Conflict, NoBucketAvailable
from shelflife.settings import Settings, TierName
from shelflife.table.records import BucketRecord, BucketStatus
from shelflife.table.repository import Repository


def utc_now() -> datetime:
    return datetime.now(UTC)


class Placement:
    def __init__(
        self,
        repository: Repository,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repository = repository
        self.settings = settings
        self.clock = clock

    def buckets(self, tier: TierName) -> list[BucketRecord]:
        """The tier's bucket records. On first use the tier's configured bucket (created
        by the stack) is recorded, so a fresh deployment places without a manual step."""
        found = self.repository.list_buckets(tier.value)
        if found:
            return found
        configured = self.settings.tier(tier)
        with suppress(Conflict):  # a concurrent first use recorded it
            self.repository.add_bucket(
                BucketRecord(
                    tier=tier,
                    backend=configured.backend,
                    name=configured.bucket,
                    capacity_bytes=configured.quota_bytes,
                    created_at=self.clock(),
                )
            )
        return self.repository.list_buckets(tier.value)

    def choose(self, tier: TierName, size: int, *, exclude: Collection[str] = ()) -> BucketRecord:
        """The active bucket that is least full once ``size`` more bytes are in it."""
        candidates = [
            bucket
            for bucket in self.buckets(tier)
            if bucket.status is BucketStatus.ACTIVE and bucket.name not in exclude
        ]
        if not candidates:
            skipped = f" (tried: {', '.join(sorted(exclude))})" if exclude else ""
            raise NoBucketAvailable(f"no active bucket in tier {tier.value!r}{skipped}")
        return min(
            candidates,
            key=lambda bucket: ((bucket.used_bytes + size) / bucket.capacity_bytes, bucket.name),
        )
