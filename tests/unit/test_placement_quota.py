"""Issue 19, part 5: placement never puts an image into a bucket whose counters say it
would pass its quota; it takes the next bucket with room, or opens the overflow bucket
itself (the capacity check's own code), so a burst of uploads between two capacity
checks cannot overfill a bucket (30 uploads of 2.2 MiB took one to 104.6 %)."""

from __future__ import annotations

import io
import random

from PIL import Image

from shelflife.adapters.backends import MemoryBackend
from shelflife.domain.records import BucketStatus
from shelflife.domain.settings import TierName
from shelflife.domain.storage import BucketPolicy
from shelflife.domain.uploads import Upload
from shelflife.services.ingest import IngestService, Outcome
from shelflife.services.placement import Placement
from tests.support.lifecycle import BUCKETS, World, lifecycle_settings

QUOTA = 40_000


def noisy_jpeg(seed: int) -> bytes:
    """About 3-4 KB of incompressible pixels, different for each seed."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (40, 30), rng.randbytes(40 * 30 * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


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
