"""The ingest service, on the in-memory repository and backends."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from shelflife.adapters.backends import MemoryBackend, ProviderBackends
from shelflife.adapters.table.memory import MemoryRepository
from shelflife.domain.errors import NoBucketAvailable, RecordNotFound
from shelflife.domain.records import (
    BucketRecord,
    BucketStatus,
    ImageAction,
    ImageRecord,
    ImageState,
    UploadState,
)
from shelflife.domain.repository import Repository
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.domain.storage import BucketPolicy, sha256_hex
from shelflife.domain.uploads import Upload, new_upload_id
from shelflife.services.ingest import IngestResult, IngestService, Outcome, image_id
from tests.support.corpus import corpus_file, corpus_names
from tests.support.crashes import WRITES, InjectedCrash, Steps
from tests.unit.test_settings import ENV

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
UPLOADS = "shelflife-upload"
TEMP = "shelflife-temp"
PHOTO = "photos/flowers.jpeg"
GPS_IFD = 0x8825


@dataclass
class World:
    """One deployment's state: the table, the upload bucket, the TEMP tier's backend."""

    repository: Repository = field(default_factory=MemoryRepository)
    uploads: MemoryBackend = field(default_factory=MemoryBackend)
    storage: MemoryBackend = field(default_factory=MemoryBackend)
    settings: Settings = field(
        default_factory=lambda: Settings.from_env(
            ENV, upload_bucket=UPLOADS, temp={"backend": "memory", "bucket": TEMP}
        )
    )

    def __post_init__(self) -> None:
        self.uploads.create_bucket(UPLOADS, BucketPolicy(tier="upload"))
        self.storage.create_bucket(TEMP, BucketPolicy(tier="temp"))

    def service(self, steps: Steps | None = None) -> IngestService:
        repository, uploads, storage = self.repository, self.uploads, self.storage
        if steps is not None:
            repository = steps.wrap(repository, "table")
            uploads = steps.wrap(uploads, "uploads")
            storage = steps.wrap(storage, "temp")
        return IngestService(
            self.settings,
            repository,
            ProviderBackends(self.settings, given={"memory": storage}),
            uploads=uploads,
            clock=lambda: NOW,
        )

    def upload(self, data: bytes, key: str = "incoming/alice/photo.jpg", **meta: str) -> Upload:
        info = self.uploads.put(UPLOADS, key, data, content_type="image/jpeg", metadata=meta)
        return Upload(bucket=UPLOADS, key=key, size=info.size, etag="etag")

    def record_bucket(self, name: str, capacity: int, used: int = 0) -> None:
        self.repository.add_bucket(
            BucketRecord(
                tier=TierName.TEMP,
                backend=BackendName.MEMORY,
                name=name,
                capacity_bytes=capacity,
                used_bytes=used,
                created_at=NOW,
            )
        )

    def ingest(self, upload: Upload) -> IngestResult:
        return self.service().ingest(upload)

    def images(self) -> list[ImageRecord]:
        return [
            image
            for owner in ("alice", "bob", "_unknown")
            for image in self.repository.images_by_owner(owner, limit=1000).items
        ]

    def stored_keys(self, bucket: str = TEMP) -> list[str]:
        return [info.key for info in self.storage.iter_objects(bucket)]

    def upload_keys(self, prefix: str = "") -> list[str]:
        return [info.key for info in self.uploads.iter_objects(UPLOADS, prefix=prefix)]

    def counters(self, bucket: str = TEMP) -> tuple[int, int]:
        try:
            record = self.repository.get_bucket("temp", bucket)
        except RecordNotFound:  # recorded on first placement: nothing placed yet
            return 0, 0
        return record.used_bytes, record.object_count


@pytest.fixture
def world() -> World:
    return World()


def test_an_upload_becomes_a_stored_counted_scheduled_image(world: World) -> None:
    original = corpus_file(PHOTO)

    result = world.ingest(world.upload(original))

    assert result.outcome is Outcome.STORED
    image = world.repository.get_image(result.image.id if result.image else "")
    assert image.state is ImageState.ACTIVE
    assert image.id == image_id("alice", sha256_hex(original))
    assert (image.original_size, image.original_sha256) == (len(original), sha256_hex(original))
    assert image.location is not None
    assert image.location.bucket == TEMP
    # The image, its stored bytes' SHA-256 and this placement's own token (issue 19).
    assert re.fullmatch(
        rf"images/{image.id}/{image.stored_sha256}-[0-9a-f]{{32}}\.jpg", image.location.key
    )
    stored = world.storage.get(TEMP, image.location.key)
    assert sha256_hex(stored.data) == image.stored_sha256
    assert len(stored.data) == image.stored_size == result.bytes_out
    assert stored.info.content_type == "image/jpeg"
    assert (image.next_action, image.due_at) == (ImageAction.PROMOTE, NOW + timedelta(hours=48))
    assert world.counters() == (image.stored_size, 1)
    assert world.upload_keys() == []  # the upload is gone once the record is durable


def test_the_same_bytes_of_the_same_owner_are_one_image(world: World) -> None:
    data = corpus_file(PHOTO)
    first = world.ingest(world.upload(data, "incoming/alice/a.jpg"))

    again = world.ingest(world.upload(data, "incoming/alice/copy of a.jpg"))

    assert again.outcome is Outcome.DUPLICATE
    assert first.image is not None
    assert again.image is not None
    assert again.image.id == first.image.id
    # Marked as uploaded again (the photo list shows it), once, and nothing else.
    assert first.image.duplicated_at is None
    marked = {"duplicated_at", "version", "change"}  # the mark, its write, no audit
    assert again.image.model_dump(exclude=marked) == first.image.model_dump(exclude=marked)
    assert again.image.duplicated_at is not None
    assert len(world.images()) == 1
    assert len(world.stored_keys()) == 1
    assert world.counters() == (first.bytes_out, 1)
    assert world.upload_keys() == []
    # A third upload of the bytes, and the second delivered again, write nothing more.
    third = world.ingest(world.upload(data, "incoming/alice/third.jpg"))
    assert third.image == again.image


def test_other_owners_get_their_own_copy(world: World) -> None:
    data = corpus_file(PHOTO)

    alice = world.ingest(world.upload(data, "incoming/alice/a.jpg"))
    bob = world.ingest(world.upload(data, "incoming/bob/a.jpg"))

    assert bob.outcome is Outcome.STORED
    assert alice.image is not None
    assert bob.image is not None
    assert alice.image.id != bob.image.id
    assert len(world.stored_keys()) == 2
    # No two records share an object (cleanup consults the image's own record only):
    # each key is its image's.
    assert alice.image.location is not None
    assert bob.image.location is not None
    assert alice.image.location.key.split("/")[1] == alice.image.id
    assert bob.image.location.key.split("/")[1] == bob.image.id
    assert world.counters() == (alice.bytes_out * 2, 2)


def test_a_redelivered_event_changes_nothing(world: World) -> None:
    upload = world.upload(corpus_file(PHOTO))
    first = world.ingest(upload)

    again = world.ingest(upload)

    assert again.outcome is Outcome.GONE
    assert world.images() == [first.image]
    assert world.counters() == (first.bytes_out, 1)


def test_a_redelivery_of_a_stored_upload_is_not_a_duplicate(world: World) -> None:
    # Issue 19: an upload stored, then delivered again while still there (the first
    # delivery stopped before deleting it), was counted as a duplicate nobody sent.
    upload = world.upload(corpus_file(PHOTO), "incoming/alice/a.jpg")
    steps = Steps()
    steps.crash_after = 4  # the claim's bucket, the claim, the put, the activation
    with pytest.raises(InjectedCrash):
        world.service(steps).ingest(upload)

    again = world.ingest(upload)

    assert again.outcome is Outcome.REDELIVERED
    assert again.counted_as is Outcome.STORED  # the first delivery never counted it
    assert world.upload_keys() == []
    (today,) = world.repository.daily_counts(NOW.date())
    assert (today.counts.get("uploaded", 0), today.counts.get("duplicates", 0)) == (1, 0)


def test_each_outcome_is_counted_once_for_the_day(world: World) -> None:
    data = corpus_file(PHOTO)
    upload = world.upload(data, "incoming/alice/a.jpg")
    world.ingest(upload)
    world.ingest(upload)  # redelivered: gone, not counted
    world.ingest(world.upload(data, "incoming/alice/b.jpg"))
    world.ingest(world.upload(b"not an image", "incoming/alice/c.jpg"))

    (today,) = world.repository.daily_counts(NOW.date())
    assert today.day == NOW.date()
    assert (today.counts["uploaded"], today.counts["duplicates"], today.counts["rejected"]) == (
        1,
        1,
        1,
    )


def test_a_bad_upload_is_quarantined_with_its_reason(world: World) -> None:
    broken = corpus_file("broken/truncated.jpg")
    upload = world.upload(broken, "incoming/alice/holiday.jpg")

    result = world.ingest(upload)

    assert (result.outcome, result.rejection_code) == (Outcome.REJECTED, "corrupt")
    image = world.repository.get_image(image_id("alice", sha256_hex(broken)))
    assert image.state is ImageState.REJECTED
    assert image.rejection_reason is not None
    assert "truncated" in image.rejection_reason
    assert image.quarantine_key == f"quarantine/alice/{image.id}/holiday.jpg"
    assert world.uploads.get(UPLOADS, image.quarantine_key).data == broken
    assert world.upload_keys("incoming/") == []
    assert world.stored_keys() == []
    assert world.counters() == (0, 0)
    assert world.ingest(upload).outcome is Outcome.GONE


def test_the_same_bad_bytes_again_share_one_quarantined_copy(world: World) -> None:
    broken = corpus_file("broken/corrupt-header.jpg")
    world.ingest(world.upload(broken, "incoming/alice/one.jpg"))

    again = world.ingest(world.upload(broken, "incoming/alice/two.jpg"))

    assert again.outcome is Outcome.REJECTED
    assert len(world.images()) == 1
    assert world.upload_keys() == [again.image.quarantine_key if again.image else ""]


def test_an_oversized_upload_is_rejected_without_downloading_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.settings = world.settings.model_copy(update={"max_upload_bytes": 1000})
    upload = world.upload(corpus_file(PHOTO))

    def no_download(*args: object) -> None:
        raise AssertionError("the upload was downloaded")

    monkeypatch.setattr(world.uploads, "get", no_download)
    result = world.ingest(upload)

    assert (result.outcome, result.rejection_code) == (Outcome.REJECTED, "too_large")
    assert result.image is not None
    assert result.image.quarantine_key is not None
    assert world.upload_keys() == [result.image.quarantine_key]


@pytest.mark.parametrize(
    ("key", "meta", "owner", "draft"),
    [
        ("incoming/alice/a.jpg", {}, "alice", None),
        ("incoming/alice/d-42/a.jpg", {}, "alice", "d-42"),
        ("incoming/alice/a.jpg", {"draft-id": "d-7"}, "alice", "d-7"),
        ("incoming/alice/d-7/a.jpg", {"draft-id": "d-7"}, "alice", "d-7"),
    ],
)
def test_owner_and_draft_come_from_the_key_or_the_metadata(
    world: World, key: str, meta: dict[str, str], owner: str, draft: str | None
) -> None:
    result = world.ingest(world.upload(corpus_file(PHOTO), key, **meta))

    assert result.image is not None
    assert (result.image.owner, result.image.draft_id) == (owner, draft)


@pytest.mark.parametrize(
    ("key", "meta", "reason"),
    [
        ("incoming/photo.jpg", {}, "is not incoming/<owner>/<file>"),
        ("incoming/alice/d1/extra/a.jpg", {}, "is not incoming/<owner>/<file>"),
        ("incoming/al ice/a.jpg", {}, "owner 'al ice'"),
        ("incoming/alice/d-1/a.jpg", {"draft-id": "d-2"}, "disagree"),
    ],
)
def test_a_key_that_does_not_say_whose_it_is_is_rejected(
    world: World, key: str, meta: dict[str, str], reason: str
) -> None:
    result = world.ingest(world.upload(corpus_file(PHOTO), key, **meta))

    assert (result.outcome, result.rejection_code) == (Outcome.REJECTED, "bad_key")
    assert result.image is not None
    assert reason in (result.image.rejection_reason or "")
    assert world.upload_keys("incoming/") == []
    assert world.upload_keys("quarantine/") == [result.image.quarantine_key]


def test_the_least_full_bucket_gets_the_image(world: World) -> None:
    world.storage.create_bucket("shelflife-temp-1", BucketPolicy(tier="temp"))
    world.record_bucket(TEMP, capacity=10**6, used=900_000)
    world.record_bucket("shelflife-temp-1", capacity=10**6)

    result = world.ingest(world.upload(corpus_file(PHOTO)))

    assert result.image is not None
    assert result.image.location is not None
    assert result.image.location.bucket == "shelflife-temp-1"
    assert world.stored_keys("shelflife-temp-1") == [result.image.location.key]


def test_a_bucket_that_is_gone_is_skipped_once(world: World) -> None:
    # Recorded first (least full) but never created: the put fails, the next one takes it.
    world.record_bucket("shelflife-gone", capacity=10**9)
    world.record_bucket(TEMP, capacity=10**6)

    result = world.ingest(world.upload(corpus_file(PHOTO)))

    assert result.outcome is Outcome.STORED
    assert result.image is not None
    assert result.image.location is not None
    assert result.image.location.bucket == TEMP
    assert world.counters() == (result.bytes_out, 1)
    assert world.counters("shelflife-gone") == (0, 0)


def test_with_no_bucket_left_an_overflow_bucket_is_opened(world: World) -> None:
    world.record_bucket("shelflife-gone", capacity=10**9)

    result = world.ingest(world.upload(corpus_file(PHOTO)))

    assert result.outcome is Outcome.STORED
    assert result.image is not None
    assert result.image.location is not None
    assert result.image.location.bucket == f"{TEMP}-1"
    assert world.stored_keys(f"{TEMP}-1") == [result.image.location.key]
    assert world.counters(f"{TEMP}-1") == (result.bytes_out, 1)
    statuses = {b.name: b.status for b in world.repository.list_buckets("temp")}
    assert statuses == {"shelflife-gone": BucketStatus.MISSING, f"{TEMP}-1": BucketStatus.ACTIVE}


def test_when_no_overflow_bucket_can_open_the_upload_waits_for_a_retry(world: World) -> None:
    world.record_bucket("shelflife-gone", capacity=10**9)
    world.storage.foreign_buckets.update(f"{TEMP}-{n}" for n in range(1, 10))
    upload = world.upload(corpus_file(PHOTO))

    with pytest.raises(NoBucketAvailable, match="belong to other accounts") as error:
        world.ingest(upload)

    assert error.value.retryable
    assert world.upload_keys() == [upload.key]  # nothing lost


# ---- every file of the corpus ------------------------------------------------------

CORPUS = corpus_names()


@pytest.mark.parametrize("name", CORPUS)
def test_every_corpus_file_is_stored_or_rejected_with_a_reason(world: World, name: str) -> None:
    result = world.ingest(
        world.upload(corpus_file(name), f"incoming/alice/{name.replace('/', '-')}")
    )

    assert result.image is not None
    if result.outcome is Outcome.REJECTED:
        assert result.image.rejection_reason
        assert result.image.quarantine_key
        assert world.uploads.get(UPLOADS, result.image.quarantine_key).data == corpus_file(name)
    else:
        assert result.outcome is Outcome.STORED
        assert result.image.location is not None
        stored = Image.open(io.BytesIO(world.storage.get(TEMP, result.image.location.key).data))
        exif = stored.getexif()
        assert not exif.get_ifd(GPS_IFD), "GPS survived"
        # Camera make/model, owner, serial numbers, dates: none of it is kept.
        assert not {0x010F, 0x0110, 0x013B, 0xA430, 0xA431, 0x0132} & set(exif), dict(exif)
    assert world.upload_keys("incoming/") == []


def test_the_corpus_outcomes_are_the_expected_ones(world: World) -> None:
    outcomes = {
        name: world.ingest(world.upload(corpus_file(name), f"incoming/alice/{i}")).outcome
        for i, name in enumerate(CORPUS)
    }

    rejected = sorted(name for name, outcome in outcomes.items() if outcome is Outcome.REJECTED)
    assert rejected == [
        "broken/corrupt-header.jpg",
        "broken/corrupted.jpg",
        "broken/truncated.jpg",
        "formats/check.svg",
    ]
    # The eight orientations of one picture are different bytes: eight images.
    assert len(world.images()) == len(CORPUS)


# ---- crashes and concurrent deliveries --------------------------------------------


def side_effects(data: bytes, key: str = "incoming/alice/photo.jpg") -> list[str]:
    """The writes of one clean ingest, in order."""
    world, steps = World(), Steps()
    world.service(steps).ingest(world.upload(data, key))
    return steps.log


def assert_one_clean_outcome(world: World, data: bytes, outcome: Outcome) -> None:
    images = world.images()
    assert len(images) == 1
    [image] = images
    assert world.upload_keys("incoming/") == []
    if outcome is Outcome.STORED:
        assert image.state is ImageState.ACTIVE
        assert image.location is not None
        assert world.stored_keys() == [image.location.key]  # one object, no orphan
        assert world.counters() == (image.stored_size, 1)
        assert world.upload_keys("quarantine/") == []
    else:
        assert image.state is ImageState.REJECTED
        assert world.stored_keys() == []
        assert world.upload_keys("quarantine/") == [image.quarantine_key]
        assert world.uploads.get(UPLOADS, image.quarantine_key or "").data == data


CASES = {
    "stored": (corpus_file(PHOTO), Outcome.STORED),
    "rejected": (corpus_file("broken/truncated.jpg"), Outcome.REJECTED),
}
CRASH_POINTS = [
    (case, step)
    for case, (data, _) in CASES.items()
    for step in range(1, len(side_effects(data)) + 1)
]


def test_the_crash_points_cover_every_step() -> None:
    assert side_effects(CASES["stored"][0]) == [
        "table.add_bucket",  # first use records the tier's configured bucket
        "table.add_image",  # the claim
        "temp.put",
        "table.replace_image",  # activation and counters
        "uploads.delete",
    ]
    assert side_effects(CASES["rejected"][0]) == [
        "uploads.copy",
        "table.add_image",
        "uploads.delete",
    ]


@pytest.mark.parametrize(("case", "step"), CRASH_POINTS)
def test_a_crash_after_any_step_is_repaired_by_redelivery(case: str, step: int) -> None:
    data, outcome = CASES[case]
    world = World()
    upload = world.upload(data)
    steps = Steps()
    steps.crash_after = step

    with pytest.raises(InjectedCrash):
        world.service(steps).ingest(upload)
    redelivered = world.ingest(upload)
    once_more = world.ingest(upload)

    # After the record is written a redelivery knows its own upload (the record's
    # source_key): REDELIVERED, never a duplicate (issue 19), and counted once in all.
    assert redelivered.outcome in (outcome, Outcome.REDELIVERED, Outcome.GONE)
    assert once_more.outcome is Outcome.GONE
    assert_one_clean_outcome(world, data, outcome)
    (today,) = world.repository.daily_counts(NOW.date())
    # Counted in the write that records the outcome: once, whatever the crash point.
    counter = "uploaded" if outcome is Outcome.STORED else "rejected"
    assert {k: v for k, v in today.counts.items() if v} == {counter: 1}


@pytest.mark.parametrize(("case", "step"), CRASH_POINTS)
def test_a_concurrent_delivery_at_any_step_gives_one_image(case: str, step: int) -> None:
    data, outcome = CASES[case]
    world = World()
    upload = world.upload(data)
    steps = Steps()
    # The same event, delivered to another instance, runs whole just before this step.
    steps.before = (step, lambda: world.ingest(upload))

    world.service(steps).ingest(upload)

    assert_one_clean_outcome(world, data, outcome)


def test_events_out_of_order_give_one_image(world: World) -> None:
    data = corpus_file(PHOTO)
    upload = world.upload(data)
    stale = Upload(bucket=UPLOADS, key=upload.key, size=10, etag="an-older-etag")

    results = [world.ingest(upload), world.ingest(stale)]

    assert [r.outcome for r in results] == [Outcome.STORED, Outcome.GONE]
    assert_one_clean_outcome(world, data, Outcome.STORED)


def test_what_became_of_an_upload_is_kept_once_however_often_it_is_delivered() -> None:
    """Issue 23, part 4: the outcome GET /uploads/{id} reads, written before the upload
    goes (a crash after it delivers the upload again: the same outcome is written)."""
    world = World()
    upload_id = new_upload_id(NOW)
    key = f"incoming/alice/{upload_id}-holiday.jpg"
    upload = world.upload(corpus_file("photos/concert.jpg"), key=key)
    watched = WRITES | {"put_upload_outcome"}
    rehearsal = Steps(watched)
    other = World()
    other.service(rehearsal).ingest(other.upload(corpus_file("photos/concert.jpg"), key=key))
    steps = Steps(watched)
    steps.crash_after = rehearsal.log.index("table.put_upload_outcome") + 1
    with pytest.raises(InjectedCrash):
        world.service(steps).ingest(upload)
    outcome = world.repository.find_upload_outcome(upload_id)
    assert outcome is not None
    assert world.upload_keys() == [key], "the upload is still there: it comes again"
    result = world.ingest(upload)
    assert result.outcome is Outcome.REDELIVERED
    assert world.repository.find_upload_outcome(upload_id) == outcome
    assert (outcome.state, outcome.photo_id, outcome.filename) == (
        UploadState.STORED,
        result.image.id if result.image else None,
        "holiday.jpg",
    )
    assert world.images()[0].filename == "holiday.jpg"
    # An object no ticket named has no outcome to keep.
    world.ingest(world.upload(corpus_file("photos/flowers.jpeg"), key="incoming/alice/x.jpg"))
    assert len(world.images()) == 2
