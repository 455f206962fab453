"""Issue 19, part 2: no interleaving of ingest, moves, cleanup and the reconciler deletes
an object that a live record points to.

Each test holds a deleter (cleanup acting on a stream record, the reconciler fixing an
orphan) after it has decided to delete and before its delete reaches the store, lets
the other party run to the end (the owner uploading the same bytes again, a restore
to the bucket the image was archived from), then lets the delete go. Keys were
content-addressed and moves kept the key, so the delete used to hit the new object.
Now every placement writes a key of its own (``records.placement_key``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from shelflife.adapters.backends import MemoryBackend, ProviderBackends
from shelflife.domain.policy import accessed, soft_deleted
from shelflife.domain.records import ImageRecord, ImageState, placement_key, replacement_key
from shelflife.domain.settings import TierName
from shelflife.domain.storage import BucketPolicy
from shelflife.domain.uploads import Upload
from shelflife.services.cleanup import CleanupService
from shelflife.services.ingest import IngestService, Outcome
from shelflife.services.reconcile import ReconcileService
from tests.support.crashes import Steps
from tests.support.lifecycle import World

UPLOADS = "uploads"


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "JPEG", quality=90)
    return out.getvalue()


class Owner:
    """alice, uploading through ingest into the world's TEMP tier."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.uploads = MemoryBackend()
        self.uploads.create_bucket(UPLOADS, BucketPolicy(tier="upload"))
        self.count = 0

    def upload(self, data: bytes) -> ImageRecord:
        self.count += 1
        key = f"incoming/alice/{self.count:08d}-photo.jpg"
        self.uploads.put(UPLOADS, key, data, content_type="image/jpeg")
        ingest = IngestService(
            self.world.settings,
            self.world.repository,
            self.world.backends(),
            uploads=self.uploads,
            clock=lambda: self.world.now,
        )
        result = ingest.ingest(Upload(bucket=UPLOADS, key=key))
        assert result.outcome is Outcome.STORED
        assert result.image is not None
        return result.image

    def delete(self, image: ImageRecord) -> None:
        self.world.change(
            image, lambda current, now, settings: soft_deleted(current, now, settings)
        )


def gated_backends(world: World, before: Callable[[], None]) -> ProviderBackends:
    """The world's stores, where ``before`` (another party's whole work) runs just
    before the first delete: the deleter has checked and decided, and is slow to act."""
    steps = Steps(watched=frozenset({"delete"}))
    steps.before = (1, before)
    return world.backends(steps)


def assert_live_objects_exist(world: World) -> None:
    for old, new in world.repository.stream:
        image = world.repository.find_image((old or new).id)  # type: ignore[union-attr]
        if image is not None and image.live:
            assert image.location is not None
            assert world.memory.exists(image.location.bucket, image.location.key), image.id


@pytest.fixture
def world() -> World:
    return World()


def test_cleanup_of_a_delete_spares_the_same_bytes_uploaded_again(world: World) -> None:
    owner = Owner(world)
    first = owner.upload(photo())
    owner.delete(first)
    old, new = world.repository.stream[-1]
    again: list[ImageRecord] = []
    cleanup = CleanupService(
        world.repository,
        gated_backends(world, lambda: again.append(owner.upload(photo()))),
    )

    result = cleanup.release(old, new)

    assert result.deleted == (first.location,)  # the old place, and only it
    (current,) = again
    assert current.id == first.id  # the same image, live again
    assert current.location != first.location
    assert world.get(first).state is ImageState.ACTIVE
    assert_live_objects_exist(world)


def test_the_reconciler_spares_the_same_bytes_uploaded_again(world: World) -> None:
    owner = Owner(world)
    first = owner.upload(photo())
    owner.delete(first)  # cleanup never ran: the object is an orphan
    again: list[ImageRecord] = []
    reconciler = ReconcileService(
        world.settings,
        world.repository,
        gated_backends(world, lambda: again.append(owner.upload(photo()))),
        clock=past_the_grace_period,
    )

    report = reconciler.run(fix=True)

    assert report.counts["deleted"] == 1
    assert again
    assert world.get(first).state is ImageState.ACTIVE
    assert_live_objects_exist(world)


def past_the_grace_period() -> datetime:
    # The in-memory store dates its objects by the wall clock.
    return datetime.now(UTC) + timedelta(days=3)


def archived(world: World) -> tuple[ImageRecord, tuple[ImageRecord | None, ImageRecord | None]]:
    """An image archived from HOT to COLD, the stream's change of it not yet cleaned up
    (its HOT object an orphan), and an access since that makes a restore due."""
    image = world.upload(TierName.HOT, age=timedelta(days=120))
    world.service().run()
    moved = world.get(image)
    assert moved.location is not None
    assert moved.location.tier is TierName.COLD
    change = world.repository.stream[-1]
    world.change(moved, lambda current, now, settings: accessed(current, now, settings))
    return moved, change


def restore(world: World) -> Callable[[], None]:
    def run() -> None:
        report = world.service().run()
        assert report.counts["restored"] == 1

    return run


def test_cleanup_of_an_archive_spares_a_restore_to_the_same_bucket(world: World) -> None:
    image, (old, new) = archived(world)
    cleanup = CleanupService(world.repository, gated_backends(world, restore(world)))

    result = cleanup.release(old, new)

    assert old is not None
    assert result.deleted == (old.location,)
    back = world.get(image)
    assert back.state is ImageState.ACTIVE
    assert back.location is not None
    assert (back.location.tier, back.location.bucket) == (TierName.HOT, old.location.bucket)  # type: ignore[union-attr]
    assert_live_objects_exist(world)


def test_the_reconciler_spares_a_restore_to_the_same_bucket(world: World) -> None:
    image, _ = archived(world)
    reconciler = ReconcileService(
        world.settings,
        world.repository,
        gated_backends(world, restore(world)),
        clock=past_the_grace_period,
    )

    report = reconciler.run(fix=True)

    assert report.counts["deleted"] >= 1  # the HOT orphan (and the COLD copy it left)
    back = world.get(image)
    assert back.state is ImageState.ACTIVE  # not marked lost after its object went
    assert back.location is not None
    assert back.location.tier is TierName.HOT
    assert_live_objects_exist(world)


def test_no_two_placements_share_a_key() -> None:
    sha = "a" * 64
    keys = {placement_key("img", sha, "jpg") for _ in range(1000)}
    moved = {replacement_key(key) for key in keys}

    assert len(keys) == len(moved) == 1000
    assert not keys & moved
    for key in keys | moved:
        assert key.startswith(f"images/img/{sha}-")
        assert key.endswith(".jpg")
    # A move of a key written before issue 19 (no token) keeps its image, sha and type.
    assert replacement_key(f"images/img/{sha}.jpg").startswith(f"images/img/{sha}-")
