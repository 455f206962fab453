"""Issue 19, part 5: placement never puts an image into a bucket whose counters say it
would pass its quota; it takes the next bucket with room, or opens the overflow bucket
itself (the capacity check's own code), so a burst of uploads between two capacity
checks cannot overfill a bucket (30 uploads of 2.2 MiB took one to 104.6 %)."""

from __future__ import annotations

import math

import pytest

from shelflife.adapters.backends import MemoryBackend
from shelflife.domain.capture import Capture
from shelflife.domain.records import BucketStatus
from shelflife.domain.settings import TierName
from shelflife.domain.storage import BucketPolicy
from shelflife.domain.uploads import Upload
from shelflife.services.ingest import IngestService, Outcome
from shelflife.services.placement import Placement
from tests.support.corpus import noisy_jpeg
from tests.support.crashes import READS, WRITES, InjectedCrash, Steps
from tests.support.lifecycle import BUCKETS, World, lifecycle_settings

QUOTA = 40_000


def test_a_burst_of_uploads_never_takes_a_bucket_past_its_threshold() -> None:
    world = World(settings=lifecycle_settings(temp={"quota_bytes": QUOTA}))
    uploads = MemoryBackend()
    uploads.create_bucket("uploads", BucketPolicy(tier="upload"))
    ingest = IngestService(
        world.settings, world.repository, world.backends(), uploads=uploads, clock=lambda: world.now
    )
    threshold = world.settings.overflow_threshold_percent
    peaks: dict[str, float] = {}

    for n in range(60):  # no capacity check runs meanwhile
        key = f"incoming/alice/{n:04d}-photo.jpg"
        uploads.put("uploads", key, noisy_jpeg(n), content_type="image/jpeg")
        assert ingest.ingest(Upload(bucket="uploads", key=key)).outcome is Outcome.STORED
        for bucket in world.repository.list_buckets(TierName.TEMP.value):
            fill = bucket.used_bytes * 100 / bucket.capacity_bytes
            peaks[bucket.name] = max(peaks.get(bucket.name, 0.0), fill)

    names = sorted(peaks)
    assert len(names) >= 3  # 60 x ~2.5 KB into 40 KB buckets: overflow buckets opened
    assert names[0] == BUCKETS[TierName.TEMP]
    assert names[1:] == [f"{BUCKETS[TierName.TEMP]}-{i}" for i in range(1, len(names))]
    assert max(peaks.values()) <= threshold, peaks  # never past 95 %, so never past 100 %
    assert min(peaks[name] for name in names[:-1]) > 80  # each filled before the next
    world.assert_consistent()


def test_a_full_bucket_is_passed_over_for_one_with_room() -> None:
    world = World(settings=lifecycle_settings(temp={"quota_bytes": 1_000}))
    placement = Placement(world.repository, world.settings, world.backends())
    first = placement.choose(TierName.TEMP, 100)
    world.repository.set_bucket_counters("temp", first.name, used_bytes=900, object_count=9)

    chosen = placement.choose(TierName.TEMP, 100)

    assert chosen.name == f"{first.name}-1"  # 1,000 bytes would be 100 %: opened one
    assert chosen.status is BucketStatus.ACTIVE
    assert world.store(TierName.TEMP).bucket_exists(chosen.name)
    assert placement.choose(TierName.TEMP, 10).name == chosen.name  # the least full
    # 940 bytes stay under 95 %: the first bucket still takes a small image.
    assert placement.choose(TierName.TEMP, 40, exclude={chosen.name}).name == first.name


class Race:
    """Two uploads that choose the same bucket before either is counted in it: upload 1
    has chosen and put when upload 2 runs whole (before upload 1's activation). After
    upload 0, the bucket has room for either of them, not both."""

    def __init__(self) -> None:
        self.photos = [noisy_jpeg(seed) for seed in (1, 2, 3)]
        sizes = stored_sizes(self.photos)
        room = sizes[0] + max(sizes[1:])
        quota = math.ceil(room / 0.95) + 1
        self.world = World(settings=lifecycle_settings(temp={"quota_bytes": quota}))
        self.uploads = MemoryBackend()
        self.uploads.create_bucket("uploads", BucketPolicy(tier="upload"))
        self.sent: set[str] = set()
        assert self.upload(0) is Outcome.STORED
        self.raced: list[Outcome] = []
        put_capture = self.world.repository.put_capture

        def racing(image_id: str, capture: Capture) -> None:
            put_capture(image_id, capture)
            if not self.raced:
                self.raced.append(Outcome.STORED)  # upload 2's own put_capture passes by
                self.raced[0] = self.upload(2)

        self.world.repository.put_capture = racing  # type: ignore[method-assign]

    def upload(self, n: int, steps: Steps | None = None) -> Outcome:
        world = self.world
        key = f"incoming/alice/{n}-photo.jpg"
        if key not in self.sent:  # once: a redelivery finds it, or finds it gone
            self.sent.add(key)
            self.uploads.put("uploads", key, self.photos[n], content_type="image/jpeg")
        repository = steps.wrap(world.repository, "table") if steps else world.repository
        ingest = IngestService(
            world.settings,
            repository,
            world.backends(steps),
            uploads=self.uploads,
            clock=lambda: world.now,
        )
        return ingest.ingest(Upload(bucket="uploads", key=key)).outcome

    def assert_settled(self) -> None:
        """All three live, nothing past the threshold, no orphan once cleanup ran,
        counters equal records."""
        world = self.world
        world.cleanup()  # the object upload 1 had put in the first bucket
        world.assert_consistent()
        assert sum(image.live for image in world.repository.all_images(limit=10).items) == 3
        threshold = world.settings.overflow_threshold_percent
        for bucket in world.repository.list_buckets(TierName.TEMP.value):
            assert bucket.used_bytes * 100 <= bucket.capacity_bytes * threshold, bucket


def test_uploads_placed_at_once_on_the_same_counters_never_pass_the_threshold() -> None:
    """The second to activate is refused by the activation's own condition and placed
    again (the overflow bucket); the object it had put is released to cleanup."""
    race = Race()
    assert race.upload(1) is Outcome.STORED
    assert race.raced == [Outcome.STORED]

    base = BUCKETS[TierName.TEMP]
    buckets = {b.name: b for b in race.world.repository.list_buckets(TierName.TEMP.value)}
    assert sorted(buckets) == [base, f"{base}-1"]
    assert buckets[base].object_count == 2  # uploads 0 and 2
    assert buckets[f"{base}-1"].object_count == 1  # upload 1, placed again
    race.assert_settled()


def test_a_crash_at_any_step_of_placing_again_is_repaired_by_redelivery() -> None:
    rehearsal = Steps(WRITES | READS)
    assert Race().upload(1, rehearsal) is Outcome.STORED
    # After the refused activation (a failed call is not a step): the overflow bucket
    # opened, the claim moved there, the put, the activation.
    assert rehearsal.log[-6:] == [
        "table.list_buckets",
        "memory.create_bucket",
        "table.add_bucket",
        "table.replace_image",
        "memory.put",
        "table.replace_image",
    ]
    for step in range(1, len(rehearsal.log) + 1):
        race = Race()
        steps = Steps(WRITES | READS)
        steps.crash_after = step
        with pytest.raises(InjectedCrash):
            race.upload(1, steps)
        assert race.upload(1) in (Outcome.STORED, Outcome.REDELIVERED), step
        assert race.upload(1) is Outcome.GONE
        if not race.raced:  # the crash came before upload 2 could run
            assert race.upload(2) is Outcome.STORED
        race.assert_settled()


def stored_sizes(photos: list[bytes]) -> list[int]:
    """What ingest stores of each photo, measured in a world of its own."""
    world = World(settings=lifecycle_settings())
    uploads = MemoryBackend()
    uploads.create_bucket("uploads", BucketPolicy(tier="upload"))
    ingest = IngestService(
        world.settings, world.repository, world.backends(), uploads=uploads, clock=lambda: world.now
    )
    sizes = []
    for n, data in enumerate(photos):
        key = f"incoming/alice/{n}-photo.jpg"
        uploads.put("uploads", key, data, content_type="image/jpeg")
        result = ingest.ingest(Upload(bucket="uploads", key=key))
        assert result.image is not None
        sizes.append(result.image.stored_size)
    return sizes
