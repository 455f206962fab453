"""Importing a bucket of existing photos (issue 22, part 5): a dry run that analyses, a
run that stores each photo like an upload where the policy has it by its age, never
touching the source, resumable from where it stopped, and exact under crashes."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from PIL import Image

from shelflife.adapters.backends import MemoryBackend
from shelflife.domain import pricebook
from shelflife.domain.costs import CostModel
from shelflife.domain.errors import InvalidArgument, RecordNotFound
from shelflife.domain.imaging import CompressionPolicy, compress
from shelflife.domain.imports import ImportSource, age_of, import_request, import_tier
from shelflife.domain.records import ChangeAction, ImageRecord, ImageState, RunKind, RunStatus
from shelflife.domain.settings import BackendName, TierName
from shelflife.domain.storage import BucketPolicy, sha256_hex
from shelflife.services.imports import ImportService
from shelflife.services.ingest import IngestService, image_id
from tests.support.corpus import corpus_file
from tests.support.crashes import READS, WRITES, InjectedCrash, Steps
from tests.support.lifecycle import NOW, World, lifecycle_settings, real_stores

SOURCE = "old-photos"
PATTERN = r"^users/(?P<owner>[^/]+)/"
# key -> (corpus file, age of the object): what a sync script left in a bucket.
FILES = {
    "users/alice/2014/jolla.jpg": ("camera/jolla.jpg", timedelta(days=3)),  # taken 2014
    "users/alice/new/concert.jpg": ("photos/concert.jpg", timedelta(days=10)),
    "users/alice/new/z-copy.jpg": ("photos/concert.jpg", timedelta(days=9)),
    "users/bob/320x240.jpg": ("photos/320x240.jpg", timedelta(days=400)),
    "users/bob/gps.jpg": ("camera/DSCN0010.jpg", timedelta(days=1)),
    "users/bob/broken.jpg": ("broken/truncated.jpg", timedelta(days=5)),
    "users/bob/drawing.svg": ("formats/check.svg", timedelta(days=5)),
    "users/carol/low-contrast.jpg": ("photos/low-contrast.jpg", timedelta(days=2)),
    "loose/flowers.jpeg": ("photos/flowers.jpeg", timedelta(days=2)),
    "users/bad id!/x.jpg": ("photos/320x240.jpg", timedelta(days=2)),
}
# Stored by an import with the pattern alone: jolla, concert, 320x240, gps, low-contrast
# (not the copy of concert, the truncated JPEG, the SVG, nor the two keys with no owner).
PHOTOS = 5


def world() -> World:
    """A world whose store stamps objects with the world's clock, holding the source
    bucket (on "s3") with ``FILES`` written at their ages."""
    holder: list[World] = []
    store = MemoryBackend(clock=lambda: holder[0].now.timestamp() if holder else NOW.timestamp())
    made = World(stores={name: store for name in BackendName})
    holder.append(made)
    store.create_bucket(SOURCE, BucketPolicy(tier="hot"))
    for key, (name, age) in FILES.items():
        made.now = NOW - age
        store.put(SOURCE, key, corpus_file(name), content_type="image/jpeg")
    made.now = NOW
    return made


def importer(made: World, steps: Steps | None = None) -> ImportService:
    repository = steps.wrap(made.repository, "table") if steps else made.repository
    backends = made.backends(steps)
    clock = lambda: made.now  # noqa: E731
    ingest = IngestService(made.settings, repository, backends, clock=clock)
    return ImportService(made.settings, repository, backends, ingest=ingest, clock=clock)


def source(**kw: Any) -> ImportSource:
    return ImportSource(BackendName.S3, SOURCE, **{"owner_pattern": PATTERN, **kw})


def the_source(made: World) -> dict[str, str]:
    """Each source key and the SHA-256 of its bytes."""
    return {
        info.key: sha256_hex(made.memory.get(SOURCE, info.key).data)
        for info in made.memory.iter_objects(SOURCE)
    }


def stored_images(made: World) -> list[ImageRecord]:
    images = made.repository.all_images(limit=1000).items
    return [image for image in images if image.state is ImageState.ACTIVE]


def test_a_dry_run_says_what_an_import_would_do_and_writes_no_photo() -> None:
    made = world()
    before = the_source(made)
    report = importer(made).start(source(owner="dave"), dry_run=True)
    assert report.complete
    c = report.counts
    assert c["listed"] == len(FILES)
    # Dave owns loose/flowers.jpeg; the copy is found present only once stored; the
    # truncated JPEG has a readable header (only the real run decodes it).
    assert c["to_import"] == PHOTOS + 3
    assert c["unreadable"] == 1  # the SVG
    assert c["no_owner"] == 1  # a pattern's match that is no user id gets no fallback
    # By age: jolla, gps and flowers were taken years ago, 320x240 written 400 days ago.
    assert (c["to_hot"], c["to_cold"]) == (4, 4)
    assert report.types["JPEG"]["files"] == len(FILES) - 2  # no SVG; the ownerless unread
    assert report.types[".svg"] == {"files": 1, "bytes": len(corpus_file("formats/check.svg"))}
    problems = {p["key"]: p for p in report.problems}
    assert set(problems) == {"users/bob/drawing.svg", "users/bad id!/x.jpg"}
    assert any("dry_run false" in line for line in report.recommendations())
    assert stored_images(made) == []
    assert made.objects() == set()
    assert the_source(made) == before
    run = made.repository.recent_runs(RunKind.IMPORT)[0]
    assert (run.id, run.dry_run, run.status) == (report.run_id, True, RunStatus.COMPLETED)


def test_an_import_stores_each_photo_like_an_upload_where_its_age_puts_it() -> None:
    made = world()
    before = the_source(made)
    report = importer(made).start(source(), dry_run=False, requested_by="admin:root")
    assert report.complete
    c = report.counts
    assert (c["imported"], c["already_present"]) == (PHOTOS, 1)  # the copy
    assert (c["unreadable"], c["no_owner"]) == (2, 2)  # loose/ and "bad id!"
    assert c["imported_hot"] + c["imported_cold"] == c["imported"]
    images = {str(image.source_key).rsplit("/", 1)[-1]: image for image in stored_images(made)}
    assert len(images) == PHOTOS
    by_name = {name: image for name, image in images.items()}
    jolla, gps = by_name["jolla.jpg"], by_name["gps.jpg"]
    assert jolla.owner == "alice"
    assert gps.owner == "bob"
    assert jolla.id == image_id("alice", sha256_hex(corpus_file("camera/jolla.jpg")))
    assert jolla.tier is TierName.COLD, "taken in 2014: where the policy has it"
    assert by_name["320x240.jpg"].tier is TierName.COLD, "written 400 days ago"
    assert by_name["concert.jpg"].tier is TierName.HOT
    assert gps.tier is TierName.COLD, "taken in 2008, however recently written"
    # Nothing imported is due for deletion on arrival: COLD's clock starts now.
    for image in images.values():
        assert image.due_at is not None
        assert image.due_at > NOW
        assert image.change is not None
        assert (image.change.action, image.change.actor) == (ChangeAction.IMPORTED, "admin:root")
    # Stored like an upload: compressed, no metadata left (the GPS fix stays behind).
    assert gps.location is not None
    stored = made.memory.get(gps.location.bucket, gps.location.key).data
    with Image.open(io.BytesIO(stored)) as decoded:
        assert not decoded.getexif()
        assert max(decoded.size) <= made.settings.max_side_px
    assert made.repository.find_capture(gps.id) is not None
    # Counted apart from uploads, equal to the records.
    daily = made.repository.daily_counts(NOW.date())
    assert daily[0].counts["imported"] == PHOTOS
    assert daily[0].counts["uploaded"] == 0
    made.assert_consistent()
    assert the_source(made) == before, "the source is never modified"
    again = importer(made).start(source(), dry_run=False)
    assert (again.counts["imported"], again.counts["already_present"]) == (0, PHOTOS + 1)


def test_originals_are_kept_stripped_when_asked_and_they_show_the_same_picture() -> None:
    made = world()
    importer(made).start(source(owner="dave", compress=False), dry_run=False)
    images = {str(image.source_key).rsplit("/", 1)[-1]: image for image in stored_images(made)}
    gps = images["gps.jpg"]  # DSCN0010: plain, with a GPS fix in its EXIF
    assert gps.location is not None
    kept = made.memory.get(gps.location.bucket, gps.location.key).data
    original = corpus_file("camera/DSCN0010.jpg")
    assert len(kept) < len(original)
    with Image.open(io.BytesIO(kept)) as a, Image.open(io.BytesIO(original)) as b:
        assert a.tobytes() == b.tobytes(), "the same picture, not re-encoded"
        assert a.size == b.size
        assert not a.getexif(), "no EXIF: the GPS fix stayed in the source"
    # What cannot be kept without changing the picture is compressed all the same.
    small = images["320x240.jpg"]
    assert small.location is not None
    stored = made.memory.get(small.location.bucket, small.location.key).data
    assert stored == compress(corpus_file("photos/320x240.jpg"), CompressionPolicy()).data


def test_a_run_out_of_time_stops_and_resumes_where_it_stopped() -> None:
    made = world()
    service = importer(made)
    budget = iter(range(3, -100, -1))  # three objects' worth of time, then none
    first = service.start(source(), dry_run=False, remaining_ms=lambda: next(budget) * 60_000)
    assert not first.complete
    assert 0 < first.counts["listed"] < len(FILES)
    assert any(first.run_id in line for line in first.recommendations())
    report = importer(made).resume(first.run_id)
    assert report.complete
    assert report.counts["listed"] == len(FILES)
    assert (report.counts["imported"], report.counts["already_present"]) == (PHOTOS, 1)
    assert importer(made).resume(first.run_id).counts == report.counts, "finished: its report"


# Every write and every read worth a crash between (the capture put included).
WATCHED = WRITES | READS | {"put_capture"}
CRASH_POINTS = 70


def test_the_crash_points_cover_a_whole_import() -> None:
    steps = Steps(WATCHED)
    importer(world(), steps).start(source(), dry_run=False)
    assert len(steps.log) < CRASH_POINTS, steps.log


@pytest.mark.parametrize("crash_after", range(1, CRASH_POINTS))
def test_a_crash_between_any_two_steps_is_finished_exactly_by_a_resume(crash_after: int) -> None:
    made = world()
    steps = Steps(WATCHED)
    steps.crash_after = crash_after
    service = importer(made, steps)
    try:
        report = service.start(source(), dry_run=False)
    except InjectedCrash:
        runs = made.repository.recent_runs(RunKind.IMPORT)
        if not runs:  # before its record: the caller sees a failure and starts again
            report = importer(made).start(source(), dry_run=False)
        else:
            report = importer(made).resume(runs[0].id)
    assert report.complete
    assert (report.counts["imported"], report.counts["already_present"]) == (PHOTOS, 1)
    assert report.counts["imported_hot"] + report.counts["imported_cold"] == PHOTOS
    assert len(stored_images(made)) == PHOTOS
    made.cleanup()
    made.assert_consistent()


def test_keys_owned_by_a_pattern_or_a_fallback() -> None:
    both = source(owner="dave")
    assert both.owner_of("users/alice/x.jpg") == "alice"
    assert both.owner_of("loose/x.jpg") == "dave"
    assert source().owner_of("loose/x.jpg") is None
    assert source().owner_of("users/bad id!/x.jpg") is None


def test_ages_and_tiers() -> None:
    written = NOW - timedelta(days=5)
    assert age_of(written, "2014-09-21T16:00:56", NOW).year == 2014
    assert age_of(written, None, NOW) == written
    assert age_of(written, "not a date", NOW) == written
    assert age_of(written, "1970-01-01T00:00:00", NOW) == written, "a camera's unset clock"
    assert age_of(NOW + timedelta(days=1), None, NOW) == NOW
    settings = World().settings
    idle = timedelta(days=settings.hot_idle_days)
    assert import_tier(NOW - idle + timedelta(hours=1), NOW, settings) is TierName.HOT
    assert import_tier(NOW - idle, NOW, settings) is TierName.COLD


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({}, "needs source"),
    ({"source": {"backend": "ftp", "bucket": SOURCE}, "owner": "a"}, "source.backend"),
    ({"source": {"backend": "s3", "bucket": "x"}, "owner": "a"}, "source.bucket"),
    ({"source": {"backend": "s3", "bucket": SOURCE, "prefix": 3}, "owner": "a"}, "prefix"),
    ({"source": {"backend": "s3", "bucket": SOURCE}}, "whose photos"),
    ({"source": {"backend": "s3", "bucket": SOURCE}, "owner": "a b"}, "owner must be"),
    ({"source": {"backend": "s3", "bucket": SOURCE}, "owner_pattern": "("}, "not a regular"),
    ({"source": {"backend": "s3", "bucket": SOURCE}, "owner_pattern": "^u/"}, "named owner"),
    ({"source": {"backend": "s3", "bucket": SOURCE}, "owner": "a", "dry_run": "no"}, "dry_run"),
    ({"source": {"backend": "s3", "bucket": SOURCE}, "owner": "a", "compress": 1}, "compress"),
    ({"run_id": "yesterday"}, "not a run id"),
    ({"run_id": "20261206T010203Z-0123abcd", "max_seconds": 0}, "max_seconds"),
]


@pytest.mark.parametrize(("event", "says"), BAD_REQUESTS)
def test_every_wrong_request_is_refused_with_its_reason(event: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        import_request(event)


@pytest.mark.parametrize(
    ("bucket", "error", "says"),
    [
        ("shelflife-hot", InvalidArgument, "the store's own"),
        ("no-such-bucket", RecordNotFound, "no bucket"),
    ],
)
def test_the_source_must_be_a_readable_bucket_not_the_stores(
    bucket: str, error: type[Exception], says: str
) -> None:
    made = world()
    with pytest.raises(error, match=says):
        importer(made).start(ImportSource(BackendName.S3, bucket, owner="a"))


def test_an_unknown_run_is_not_found() -> None:
    service: Callable[[], ImportService] = lambda: importer(world())  # noqa: E731
    with pytest.raises(RecordNotFound):
        service().resume("20261206T010203Z-0123abcd")


@pytest.mark.parametrize("backend", [BackendName.S3, BackendName.R2, BackendName.B2])
def test_any_providers_bucket_can_be_imported(aws: None, backend: BackendName) -> None:
    """The source through each provider's real adapter (S3 and R2 on moto, B2 on
    b2sdk's simulator): listed in batches, read, never written."""
    stores = real_stores()
    made = World(stores={**stores, BackendName.MEMORY: stores[BackendName.MEMORY]})
    source_store = stores[backend]
    source_store.create_bucket("camera-roll", BucketPolicy(tier="hot"))
    names = ["photos/concert.jpg", "photos/320x240.jpg", "photos/low-contrast.jpg"]
    for n, name in enumerate(names):
        source_store.put(
            "camera-roll", f"roll/{n:03d}.jpg", corpus_file(name), content_type="image/jpeg"
        )
    report = importer(made).start(
        ImportSource(backend, "camera-roll", "roll/", owner="zoe"), dry_run=False
    )
    assert report.complete
    assert report.counts["imported"] == len(names)
    assert report.expected == len(names)
    assert len(stored_images(made)) == len(names)
    assert [info.key for info in source_store.iter_objects("camera-roll")] == [
        f"roll/{n:03d}.jpg" for n in range(len(names))
    ]


@pytest.mark.parametrize("backend", [BackendName.S3, BackendName.B2])
def test_an_imports_cost_is_priced_from_the_book_and_stated(backend: BackendName) -> None:
    """Invariant 4: the dry run's cost comes from the price book (the one model), with
    its baseline; egress only from a provider that charges it."""
    settings = lifecycle_settings(hot={"backend": "s3"}, cold={"backend": "b2"})
    book = pricebook.book()
    cost = CostModel(settings).import_cost(
        photos={TierName.HOT: 900, TierName.COLD: 100},
        keys=2500,
        bytes_read=3 * 1024**3,
        source=backend,
    )
    shape = settings.stack_shape()
    per_photo = book.compute_cost(book.stack.imported, shape)
    per_photo += book.compute_cost(book.stack.audit_entry, shape)
    hot, cold = (book.offer(str(settings.offer_name(t))) for t in (TierName.HOT, TierName.COLD))
    puts = 900 * hot.write_per_request + 100 * cold.write_per_request
    assert cost["operations_usd"] == pytest.approx(1000 * per_photo + puts)
    origin = book.for_backend(backend.value)
    assert cost["source_reads_usd"] == pytest.approx(
        2500 * origin.read_per_request + 3 * origin.write_per_request
    )
    egress = 0.0 if backend is BackendName.S3 else 3 * origin.egress_per_gb
    assert cost["source_egress_usd"] == pytest.approx(egress)
    assert cost["total_usd"] == pytest.approx(sum(v for k, v in cost.items() if k != "total_usd"))
    assert cost["total_usd"] > 0


def test_a_dry_runs_report_states_its_cost_and_baseline() -> None:
    made = world()
    report = importer(made).start(source(owner="dave"), dry_run=True).as_dict()
    assert report["cost"]["total_usd"] > 0
    assert "list prices" in report["cost"]["baseline"]
    assert any(
        f"${report['cost']['total_usd']:.4f} once" in line for line in report["recommendations"]
    )
