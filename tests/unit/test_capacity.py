"""The capacity check on the in-memory twins: usage, cleanup at 85 %, overflow at 95 %,
crashes, and the age-based cleanup's eligibility rules."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from shelflife.adapters.backends import MemoryBackend, ProviderBackends
from shelflife.adapters.table.memory import MemoryRepository
from shelflife.domain.errors import InvalidArgument
from shelflife.domain.placement import overflow_number
from shelflife.domain.policy import cleanup_eligible
from shelflife.domain.records import (
    BucketRecord,
    BucketStatus,
    ChangeAction,
    ImageRecord,
    ImageState,
    Location,
    RunKind,
    RunStatus,
    Variant,
)
from shelflife.domain.repository import Repository
from shelflife.domain.requests import capacity_request
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.domain.storage import BucketPolicy
from shelflife.services.capacity import CapacityService
from tests.support.crashes import InjectedCrash, Steps

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TEMP, HOT, COLD = "shelflife-temp", "shelflife-hot", "shelflife-cold"
CAPACITY = 1000


@dataclass
class World:
    repository: Repository = field(default_factory=MemoryRepository)
    storage: MemoryBackend = field(default_factory=MemoryBackend)
    settings: Settings = field(
        default_factory=lambda: Settings.from_env(
            {},
            table_name="shelflife-test",
            temp={"backend": "memory", "bucket": TEMP, "quota_bytes": CAPACITY},
            hot={"backend": "memory", "bucket": HOT, "quota_bytes": CAPACITY},
            cold={"backend": "memory", "bucket": COLD, "quota_bytes": CAPACITY},
            cors_allowed_origins=("https://photos.example",),
        )
    )
    images: int = 0

    def __post_init__(self) -> None:
        for name in (TEMP, HOT, COLD):
            self.storage.create_bucket(name, BucketPolicy(tier=name.rsplit("-")[-1]))

    def service(self, steps: Steps | None = None) -> CapacityService:
        repository: Repository = self.repository
        storage: MemoryBackend = self.storage
        if steps is not None:
            repository = steps.wrap(repository, "table")
            storage = steps.wrap(storage, "storage")
        backends = ProviderBackends(self.settings, given={"memory": storage})
        return CapacityService(self.settings, repository, backends, clock=lambda: NOW)

    def image(self, size: int = 100, *, age_days: float = 60, **changes: object) -> ImageRecord:
        """A live image of ``size`` bytes in the TEMP bucket, uploaded ``age_days`` ago."""
        self.images += 1
        self.service().placement.buckets(TierName.TEMP)
        record = ImageRecord.model_validate(
            {
                "id": f"img-{self.images:03d}",
                "owner": "alice",
                "location": Location(
                    tier=TierName.TEMP,
                    backend=BackendName.MEMORY,
                    bucket=TEMP,
                    key=f"images/{self.images}.jpg",
                ),
                "stored_size": size,
                "uploaded_at": NOW - timedelta(days=age_days),
                **changes,
            }
        )
        return self.repository.add_image(record)

    def bucket(self, name: str = TEMP, tier: str = "temp") -> BucketRecord:
        return self.repository.get_bucket(tier, name)

    def fill(self, percent: float, name: str = TEMP) -> None:
        """Set the bucket's counters as if it held ``percent`` of its quota in objects
        the cleanup may not touch (too young)."""
        self.service().placement.buckets(TierName.TEMP)
        used = round(CAPACITY * percent / 100)
        self.repository.set_bucket_counters("temp", name, used_bytes=used, object_count=1)


@pytest.fixture
def world() -> World:
    return World()


# ---- the report ---------------------------------------------------------------------


def test_the_report_reads_every_bucket_from_its_counters(world: World) -> None:
    world.image(120)
    world.image(80)

    report = world.service().check()

    temp = next(bucket for bucket in report.buckets if bucket.name == TEMP)
    assert (temp.used_bytes, temp.capacity_bytes, temp.object_count) == (200, CAPACITY, 2)
    assert (temp.percent, temp.status) == (20.0, "active")
    assert {bucket.name for bucket in report.buckets} == {TEMP, HOT, COLD}
    assert (report.cleanups, report.marked_full, report.opened) == ([], [], [])
    [run] = world.repository.recent_runs(RunKind.CAPACITY)
    assert (run.id, run.status, run.counts["buckets"]) == (report.run_id, RunStatus.COMPLETED, 3)
    assert run.expires_at == NOW + timedelta(days=30)


# ---- cleanup at 85 % -------------------------------------------------------------------


def test_cleanup_over_many_pages_in_no_order_deletes_exactly_the_oldest(
    world: World,
) -> None:
    """The records of a bucket come a page at a time in no order of upload (a scan):
    the cleanup still deletes the oldest, and only as many as it needs."""
    ages = list(range(31, 31 + 250))  # past the minimum age (30 days)
    random.Random(7).shuffle(ages)
    images = {age: world.image(2, age_days=age) for age in ages}  # 500 bytes
    world.image(400, age_days=1)  # too young; 900 bytes in all: 90 %

    [cleanup] = world.service().check().cleanups

    # Under 85 % means more than 50 bytes freed: the 26 oldest (52 bytes).
    oldest = sorted(ages, reverse=True)[:26]
    assert cleanup.deleted == [images[age].id for age in oldest]
    assert (cleanup.examined, cleanup.freed_bytes, cleanup.under_threshold) == (250, 52, True)
    for age, image in images.items():
        state = world.repository.get_image(image.id).state
        assert state is (ImageState.DELETED if age in oldest else ImageState.ACTIVE), age


def test_cleanup_deletes_eligible_images_oldest_first_until_under_the_threshold(
    world: World,
) -> None:
    oldest_draft = world.image(age_days=400, draft_id="d-1")  # the policy keeps drafts
    oldest = world.image(age_days=300)
    published = world.image(age_days=200, published_at=NOW - timedelta(days=2))  # kept 7 d
    second = world.image(age_days=100)
    third = world.image(age_days=90)
    young = [world.image(age_days=5) for _ in range(4)]  # 900 bytes in all: 90 %

    report = world.service().check()

    [cleanup] = report.cleanups
    assert cleanup.deleted == [oldest.id]  # 800 bytes left: under 85 %, stop
    # The records come in no order (a scan): every one past the minimum age is read.
    assert (cleanup.examined, cleanup.not_eligible, cleanup.freed_bytes) == (5, 2, 100)
    assert world.repository.get_image(oldest.id).state is ImageState.DELETED
    for kept in (oldest_draft, published, second, third, *young):
        assert world.repository.get_image(kept.id).state is ImageState.ACTIVE
    assert (world.bucket().used_bytes, world.bucket().object_count) == (800, 8)


def test_cleanup_counts_the_variants_it_frees_in_the_bucket(world: World) -> None:
    """A bucket that holds photos and their sized variants (HOT's variants bucket):
    each old photo frees 60 bytes and its 60-byte variant beside it. The first deletion
    takes 940 bytes to 820, under 85 %; counting the photo alone, it deleted two."""

    def variant(n: int) -> Variant:
        place = Location(
            tier=TierName.TEMP, backend=BackendName.MEMORY, bucket=TEMP, key=f"variants/{n}.webp"
        )
        return Variant(name="w320.webp", location=place, size=60)

    old = [world.image(60, age_days=300 - n, variants=(variant(n),)) for n in range(4)]
    young = [world.image(115, age_days=5) for _ in range(4)]
    assert world.bucket().used_bytes == 940

    report = world.service().check()

    [cleanup] = report.cleanups
    assert cleanup.deleted == [old[0].id]
    assert (cleanup.freed_bytes, cleanup.used_bytes_after) == (120, 820)
    assert world.bucket().used_bytes == 820  # the counters agree with the estimate
    for kept in (*old[1:], *young):
        assert world.repository.get_image(kept.id).state is ImageState.ACTIVE


def test_a_cleanups_deletions_say_who_and_why_in_the_audit_trail(world: World) -> None:
    """Issue 22, part 1: a capacity check's deletions are the capacity function's, with
    the bucket and its usage; an admin's age-based cleanup is the admin's."""
    first = world.image(age_days=300)
    world.image(age_days=250)  # the check deletes these two: 800 bytes left
    second = world.image(age_days=200)
    for _ in range(7):
        world.image(age_days=1)  # 1000 bytes in all: 100 %

    world.service().check()
    change = world.repository.get_image(first.id).change
    assert change is not None
    assert (change.action, change.actor) == (ChangeAction.DELETED, "capacity")
    assert change.reason == f"capacity cleanup: temp bucket {TEMP} at 100.0 %, over 85 %"
    assert change.at == NOW

    request = capacity_request(
        {
            "action": "cleanup",
            "tier": "temp",
            "dry_run": False,
            "threshold_percent": 50,
            "requested_by": "admin:root",
        }
    )
    world.service().cleanup_request(request)
    change = world.repository.get_image(second.id).change
    assert change is not None
    assert (change.action, change.actor) == (ChangeAction.DELETED, "admin:root")
    assert change.reason is not None
    assert change.reason.startswith("age-based cleanup: temp bucket")
    with pytest.raises(InvalidArgument):
        capacity_request({"action": "cleanup", "tier": "temp", "requested_by": 7})


def test_cleanup_stops_when_nothing_more_is_eligible(world: World) -> None:
    old = world.image(age_days=60)
    for _ in range(9):
        world.image(age_days=1)  # 1000 bytes in all

    report = world.service().check()

    [cleanup] = report.cleanups
    assert (cleanup.deleted, cleanup.under_threshold) == ([old.id], False)
    assert world.bucket().used_bytes == 900  # 90 %: over 85 %, under 95 %
    assert (report.marked_full, report.opened) == ([], [])


def test_a_published_image_past_its_retention_is_eligible(world: World) -> None:
    settings = world.settings
    live = world.image(age_days=60, published_at=NOW - timedelta(days=8), draft_id="d-1")

    assert cleanup_eligible(live, NOW, settings)
    assert not cleanup_eligible(live.model_copy(update={"published_at": NOW}), NOW, settings)
    assert not cleanup_eligible(live.model_copy(update={"published_at": None}), NOW, settings)
    young = live.model_copy(update={"uploaded_at": NOW - timedelta(days=29)})
    assert not cleanup_eligible(young, NOW, settings)
    gone = live.model_copy(update={"state": ImageState.DELETED})
    assert not cleanup_eligible(gone, NOW, settings)


def test_a_dry_run_reports_and_changes_nothing(world: World) -> None:
    old = world.image(age_days=60)
    world.image(950, age_days=1)  # 105 %; 95 % without the old one

    report = world.service().check(dry_run=True)

    assert report.cleanups[0].deleted == [old.id]
    assert (report.marked_full, report.overflow_needed, report.opened) == ([TEMP], ["temp"], [])
    assert world.repository.get_image(old.id).state is ImageState.ACTIVE
    assert world.bucket().status is BucketStatus.ACTIVE
    assert not world.storage.bucket_exists(f"{TEMP}-1")
    assert world.repository.recent_runs(RunKind.CAPACITY)[0].dry_run


# ---- overflow at 95 % ------------------------------------------------------------------


def test_past_95_percent_the_bucket_is_marked_full_and_an_overflow_bucket_opens(
    world: World,
) -> None:
    world.fill(96)

    report = world.service().check()

    assert (report.marked_full, report.opened) == ([TEMP], [f"{TEMP}-1"])
    assert world.bucket().status is BucketStatus.FULL
    overflow = world.bucket(f"{TEMP}-1")
    assert (overflow.status, overflow.capacity_bytes, overflow.used_bytes) == (
        BucketStatus.ACTIVE,
        CAPACITY,
        0,
    )
    description = world.storage.describe_bucket(f"{TEMP}-1")
    assert description.cors_origins == ("https://photos.example",)
    assert description.tags == {"shelflife:tier": "temp"}
    assert description.abort_incomplete_uploads_after_days == 1
    # The next check finds room in the overflow bucket and opens nothing more.
    assert world.service().check().opened == []
    world.fill(97, f"{TEMP}-1")
    assert world.service().check().opened == [f"{TEMP}-2"]


def test_a_full_bucket_back_under_the_cleanup_threshold_takes_objects_again(
    world: World,
) -> None:
    world.fill(96)
    world.service().check()
    world.fill(50)

    report = world.service().check()

    assert report.reopened == [TEMP]
    assert world.bucket().status is BucketStatus.ACTIVE


def test_a_failed_overflow_is_reported_and_the_check_completes(world: World) -> None:
    world.storage.foreign_buckets.update(f"{TEMP}-{n}" for n in range(1, 10))
    world.fill(99)

    report = world.service().check()

    assert report.opened == []
    assert len(report.failures) == 1
    assert "belong to other accounts" in report.failures[0]
    [run] = world.repository.recent_runs(RunKind.CAPACITY)
    assert (run.status, run.counts["overflow_failed"]) == (RunStatus.COMPLETED, 1)


@pytest.mark.parametrize("crash_after", [1, 2, 3])
def test_a_crash_anywhere_in_opening_an_overflow_bucket_is_repaired_by_the_next_check(
    world: World, crash_after: int
) -> None:
    # Steps: 1 mark full, 2 create the bucket, 3 record it, 4 save the run.
    world.fill(96)
    steps = Steps()
    steps.crash_after = crash_after

    with pytest.raises(InjectedCrash):
        world.service(steps).check()
    report = world.service().check()

    assert world.bucket().status is BucketStatus.FULL
    assert [b.name for b in world.repository.list_buckets("temp")] == [TEMP, f"{TEMP}-1"]
    assert world.bucket(f"{TEMP}-1").status is BucketStatus.ACTIVE
    assert world.storage.bucket_exists(f"{TEMP}-1")
    assert not world.storage.bucket_exists(f"{TEMP}-2")
    if crash_after == 2:  # created, not recorded: adopted, not created again
        assert report.opened == [f"{TEMP}-1"]


def test_overflow_names_are_numbered_after_the_base() -> None:
    assert overflow_number("photos", "photos") == 0
    assert overflow_number("photos-12", "photos") == 12
    for other in ("photos-01", "photos-x", "photosx-1", "other-1"):
        assert overflow_number(other, "photos") is None
