"""A deployment for lifecycle tests: the three tiers' buckets, the in-memory table with
its change feed, a clock the test moves, and the cleanup function played from that
feed, so a test sees what the stack would do, objects included.

Stores are given per backend name: by default one in-memory store serves every name
(a tier may then name ``s3`` or ``b2`` to be priced as such), or real adapters on moto
and b2sdk's simulator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shelflife.adapters.backends import (
    B2Backend,
    MemoryBackend,
    ProviderBackends,
    R2Backend,
    S3Backend,
    StorageBackend,
)
from shelflife.adapters.table.memory import MemoryRepository
from shelflife.domain.audit import acting, user_actor
from shelflife.domain.policy import scheduled
from shelflife.domain.records import ImageRecord, ImageState, Location
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.domain.storage import BucketPolicy, sha256_hex
from shelflife.services.cleanup import CleanupService
from shelflife.services.lifecycle import LifecycleReport, LifecycleService
from tests.conftest import R2_ACCOUNT_ID, REGION
from tests.support.crashes import Steps

NOW = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
TEMP, HOT, COLD = "shelflife-temp", "shelflife-hot", "shelflife-cold"
BUCKETS = {TierName.TEMP: TEMP, TierName.HOT: HOT, TierName.COLD: COLD}


def lifecycle_settings(**overrides: Any) -> Settings:
    """Every tier in memory unless ``overrides`` name another backend for a tier
    (``hot={"backend": "r2"}``); one worker, so crash points are deterministic."""
    tiers = {
        tier.value: {"backend": "memory", "bucket": name, **overrides.pop(tier.value, {})}
        for tier, name in BUCKETS.items()
    }
    # These worlds test moves: a promotion copies unless a test asks for one in place.
    overrides.setdefault("promote_in_place", False)
    return Settings.from_env(
        {}, table_name="shelflife-test", lifecycle_workers=1, **tiers, **overrides
    )


def real_stores() -> dict[BackendName, StorageBackend]:
    """Every backend's real adapter: S3 and R2 on moto (call inside ``mock_aws``), B2 on
    b2sdk's simulator, and the in-memory store."""
    return {
        BackendName.S3: S3Backend(region=REGION),
        BackendName.R2: R2Backend.for_account(
            R2_ACCOUNT_ID, access_key_id="testing", secret_access_key="testing"
        ),
        BackendName.B2: B2Backend.simulated(),
        BackendName.MEMORY: MemoryBackend(),
    }


def _one_memory_store() -> dict[BackendName, StorageBackend]:
    store = MemoryBackend()
    return {name: store for name in BackendName}


@dataclass
class World:
    settings: Settings = field(default_factory=lifecycle_settings)
    stores: Mapping[BackendName, StorageBackend] = field(default_factory=_one_memory_store)
    repository: MemoryRepository = field(default_factory=MemoryRepository)
    now: datetime = NOW
    images: int = 0
    _played: int = 0

    def __post_init__(self) -> None:
        for tier, name in BUCKETS.items():
            self.store(tier).create_bucket(name, BucketPolicy(tier=tier.value))
        if self.settings.serve is not None:  # created by its owner, like an R2 HOT bucket
            serve = self.settings.serve
            self.stores[serve.backend].create_bucket(serve.bucket, BucketPolicy(tier="hot"))

    def store(self, tier: TierName) -> StorageBackend:
        return self.stores[self.settings.tier(tier).backend]

    @property
    def memory(self) -> MemoryBackend:
        """The in-memory store, for tests that reach behind the interface."""
        store = self.stores[BackendName.MEMORY]
        assert isinstance(store, MemoryBackend)
        return store

    def backends(self, steps: Steps | None = None) -> ProviderBackends:
        given = {
            name.value: steps.wrap(store, name.value) if steps else store
            for name, store in self.stores.items()
        }
        return ProviderBackends(self.settings, given=given)

    def service(self, steps: Steps | None = None) -> LifecycleService:
        repository = steps.wrap(self.repository, "table") if steps else self.repository
        return LifecycleService(
            self.settings, repository, self.backends(steps), clock=lambda: self.now
        )

    def sweep(self, *, dry_run: bool = False) -> LifecycleReport:
        """One scheduled run, then the cleanup function catching up with the stream."""
        report = self.service().run(dry_run=dry_run)
        self.cleanup()
        return report

    def cleanup(self) -> None:
        cleanup = CleanupService(self.repository, self.backends())
        for old, new in self.repository.stream[self._played :]:
            cleanup.release(old, new)
        self._played = len(self.repository.stream)

    def upload(
        self,
        tier: TierName = TierName.TEMP,
        *,
        age: timedelta = timedelta(0),
        size: int = 100,
        **changes: object,
    ) -> ImageRecord:
        """A live image of ``size`` bytes stored in ``tier``, uploaded (and placed
        there) ``age`` ago, as ingest or an earlier move left it."""
        self.images += 1
        self.service().placement.buckets(tier)
        data = (f"image {self.images} ".encode() * size)[:size]
        key = f"images/img-{self.images:03d}/{sha256_hex(data)}.jpg"
        self.store(tier).put(BUCKETS[tier], key, data, content_type="image/jpeg")
        record = ImageRecord.model_validate(
            {
                "id": f"img-{self.images:03d}",
                "owner": "alice",
                "location": Location(
                    tier=tier,
                    backend=self.settings.tier(tier).backend,
                    bucket=BUCKETS[tier],
                    key=key,
                ),
                "stored_size": len(data),
                "stored_sha256": sha256_hex(data),
                "uploaded_at": self.now - age,
                "placed_at": self.now - age,
                **changes,
            }
        )
        with acting("ingest", clock=lambda: self.now):
            return self.repository.add_image(scheduled(record, self.settings))

    def get(self, image: ImageRecord) -> ImageRecord:
        return self.repository.get_image(image.id)

    def tier_of(self, image: ImageRecord) -> TierName | None:
        current = self.get(image)
        return current.location.tier if current.live and current.location else None

    def change(self, image: ImageRecord, how: Callable[..., ImageRecord]) -> ImageRecord:
        """Apply a policy transition (``accessed``, ``published``) as the API would."""
        current = self.get(image)
        with acting(user_actor(current.owner), clock=lambda: self.now):
            return self.repository.replace_image(current, how(current, self.now, self.settings))

    def objects(self) -> set[tuple[str, str, str]]:
        """(backend, bucket, key) of every object in every bucket of every tier."""
        found = set()
        # Each bucket on its own backend (HOT's serving buckets are on another one).
        places = {(self.settings.tier(tier).backend, BUCKETS[tier]) for tier in TierName}
        places |= {(b.backend, b.name) for b in self.repository.list_buckets()}
        if self.settings.serve is not None:
            places.add((self.settings.serve.backend, self.settings.serve.bucket))
        for backend, name in sorted(places):
            store = self.stores[backend]
            if store.bucket_exists(name):
                found |= {(store.name, name, info.key) for info in store.iter_objects(name)}
        return found

    def assert_consistent(self) -> None:
        """Invariants 1 and 4, and no orphan: every live record's object exists with its
        checksum, every object belongs to a record, counters equal their records. A lost
        record keeps its object from being an orphan, but its object may be gone."""
        ids = {image.id for pair in self.repository.stream for image in pair if image}
        referenced: set[tuple[str, str, str]] = set()
        lost: set[tuple[str, str, str]] = set()
        usage: dict[tuple[str, str], list[int]] = {
            (b.tier.value, b.name): [0, 0] for b in self.repository.list_buckets()
        }
        for image_id in ids:
            image = self.repository.find_image(image_id)
            if image is None:
                continue
            for place in image.referenced():
                store = self.stores[place.backend]
                found = lost if image.state is ImageState.LOST else referenced
                found.add((store.name, place.bucket, place.key))
            if not image.live:
                continue
            assert image.location is not None
            stored = self.stores[image.location.backend].get(
                image.location.bucket, image.location.key
            )
            assert sha256_hex(stored.data) == image.stored_sha256, image.id
            for place, size in image.held():  # the image and its sized variants
                usage[(place.tier.value, place.bucket)][0] += size
                usage[(place.tier.value, place.bucket)][1] += 1
        objects = self.objects()
        assert objects - lost == referenced
        for bucket in self.repository.list_buckets():
            counted = [bucket.used_bytes, bucket.object_count]
            assert counted == usage[(bucket.tier.value, bucket.name)], bucket.name
