"""What each event writes to the table, measured on the real services and priced as
DynamoDB bills it (``tests.support.units``): the price book's ``[stack]`` counts the
same units, so a change that writes more (another index, a transaction where one write
would do) changes the store's bill in the book, the simulator and ``/stats`` too.

Each event is measured in steady state: the buckets already recorded, the run's own
record left out (the scheduled run's ``lifecycle`` use counts it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shelflife.adapters.backends import MemoryBackend, ProviderBackends
from shelflife.adapters.table.audit import audit_model
from shelflife.domain.audit import AuditEntry, AuditPlace
from shelflife.domain.auth import Caller
from shelflife.domain.capture import Capture
from shelflife.domain.imaging import compress
from shelflife.domain.imports import ImportSource
from shelflife.domain.policy import published, soft_deleted
from shelflife.domain.pricebook import PriceBook, book, read_changes
from shelflife.domain.records import ChangeAction, ImageRecord
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.domain.storage import BucketPolicy
from shelflife.domain.uploads import Upload, new_upload_id
from shelflife.services.imports import ImportService
from shelflife.services.ingest import IngestService
from shelflife.services.photos import PhotoService
from shelflife.services.variants import VariantService
from tests.support.corpus import corpus_file
from tests.support.lifecycle import NOW, World, lifecycle_settings
from tests.support.units import (
    INDEXES,
    Index,
    MeteredRepository,
    item_size,
    item_write_units,
    stored_bytes,
    value_size,
)
from tests.unit.test_settings import ENV

SERVING = {"serve": {"backend": "r2", "bucket": "shelflife-serve"}, "serve_published": "always"}


def metered(world: World) -> MeteredRepository:
    assert isinstance(world.repository, MeteredRepository)
    return world.repository


def measure(world: World, event: Callable[[], object]) -> int:
    """The units ``event`` writes, the lifecycle run's own record left out."""
    repository = metered(world)
    repository.units = 0
    event()
    return repository.units


# A photo's capture facts as a camera's EXIF gives them (the corpus' DSCN0010.jpg).
CAPTURE = Capture(
    taken_at="2008-10-22T16:28:39",
    camera_make="NIKON",
    camera_model="COOLPIX P6000",
    exposure_time="1/77",
    f_number=5.9,
    iso=64,
    focal_length_mm=24.0,
    width=640,
    height=480,
    orientation=1,
)


def world(**overrides: object) -> World:
    return World(settings=lifecycle_settings(**overrides), repository=MeteredRepository())


def photos(w: World) -> PhotoService:
    return PhotoService(w.settings, w.repository, w.backends(), clock=lambda: w.now)


def upload(w: World, tier: TierName, **changes: Any) -> ImageRecord:
    """A stored image as ingest leaves it (in every index: it has its upload's hash),
    after another, so its bucket is recorded already."""
    w.upload(tier, original_sha256="0" * 64)
    return w.upload(tier, age=timedelta(days=3), original_sha256="1" * 64, **changes)


# ---- the rules ---------------------------------------------------------------------


def test_item_sizes_follow_dynamodbs_rules() -> None:
    assert value_size({"S": "héllo"}) == 6  # UTF-8 bytes
    assert value_size({"N": "12345"}) == 4  # (5 digits + 1) // 2 + 1
    assert value_size({"N": "-0.00120"}) == 2  # significant digits only
    assert value_size({"BOOL": True}) == 1
    assert value_size({"M": {"a": {"N": "1"}}}) == 3 + 1 + 2 + 1
    assert item_size({"pk": {"S": "IMAGE#1"}, "n": {"N": "7"}}) == 2 + 7 + 1 + 2


def test_a_write_bills_its_kilobytes_twice_in_a_transaction_and_each_index_it_touches() -> None:
    small = {"pk": {"S": "x"}}
    assert item_write_units(None, small, transaction=False) == 1
    assert item_write_units(None, small, transaction=True) == 2
    big = {"pk": {"S": "x" * 1500}}
    assert item_write_units(small, big, transaction=False) == 2  # the larger of the two
    # An item in the owner index (owner + uploaded_at): one more write; moving its key
    # (another upload time) is a delete and a put.
    owned = {**small, "owner": {"S": "alice"}, "uploaded_at": {"S": "2026"}}
    assert item_write_units(None, owned, transaction=False) == 2
    assert item_write_units(owned, {**owned, "id": {"S": "1"}}, transaction=False) == 2
    assert item_write_units(owned, {**owned, "uploaded_at": {"S": "2027"}}, transaction=False) == 3
    assert item_write_units(owned, small, transaction=False) == 2  # taken out of the index


# ---- each event, on the real services ------------------------------------------------

# The next table step priced before it is built (docs/ECONOMICS.md, "What remains"):
# the same events measured with both indexes projecting KEYS_ONLY must write what that
# file says, so its figures stay true while the code changes.
KEYS_ONLY = Path(__file__).parents[2] / "docs" / "economics" / "keys-only.toml"


@pytest.fixture(params=["deployed", "keys-only"])
def expected(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> PriceBook:
    """The book the events must match: the layer's, for the table as deployed; or, with
    the indexes made KEYS_ONLY, the layer's with ``KEYS_ONLY``'s changes."""
    if request.param == "deployed":
        return book()
    for name, index in list(INDEXES.items()):
        monkeypatch.setitem(INDEXES, name, Index(index.keys, ()))
    return read_changes(KEYS_ONLY)


def test_an_upload_writes_what_the_book_says(expected: PriceBook) -> None:
    repository = MeteredRepository()
    uploads, storage = MemoryBackend(), MemoryBackend()
    settings = Settings.from_env(
        ENV, upload_bucket="shelflife-up", temp={"backend": "memory", "bucket": "shelflife-temp"}
    )
    uploads.create_bucket("shelflife-up", BucketPolicy(tier="upload"))
    storage.create_bucket("shelflife-temp", BucketPolicy(tier="temp"))
    ingest = IngestService(
        settings,
        repository,
        ProviderBackends(settings, given={"memory": storage}),
        uploads=uploads,
        clock=lambda: NOW,
    )
    measured, entries = [], []
    for index, name in enumerate(("photos/flowers.jpeg", "camera/DSCN0010.jpg")):
        data = corpus_file(name)
        key = f"incoming/alice/{new_upload_id(NOW)}-{index}.jpg"  # as a ticket names it
        info = uploads.put("shelflife-up", key, data, content_type="image/jpeg")
        repository.units = 0
        repository.entries.clear()
        ingest.ingest(Upload(bucket="shelflife-up", key=key, size=info.size, etag="e"))
        measured.append(repository.units)
        entries.append(repository.entries.total())
    # The first upload also records the TEMP bucket; the second is every upload after.
    assert measured[0] == measured[1] + 1
    assert expected.stack.upload.table_writes == measured[1]
    assert expected.stack.upload.audit_entries == entries[1] == 1  # stored
    # What the table keeps of it, alive and deleted (until its TTL).
    stored = repository.images_by_owner("alice", limit=10).items[-1]
    assert stored.live
    # The record with its index entries, and its capture facts' item beside it.
    capture = stored_bytes(repository.capture_item(stored.id), {})
    assert repository.captures[stored.id].camera_model is not None
    assert expected.stack.record_bytes == stored_bytes(repository.item(stored)) + capture
    deleted = soft_deleted(stored, NOW, settings)
    assert expected.stack.deleted_record_bytes == stored_bytes(repository.item(deleted)) + capture


def test_an_imported_photo_writes_what_the_book_says(expected: PriceBook) -> None:
    """Issue 22, part 5: a photo of ``shelflife import`` (the run's record left out)."""
    w = world()
    w.memory.create_bucket("old-photos", BucketPolicy(tier="hot"))
    for prefix, name in (("a/", "photos/flowers.jpeg"), ("b/", "camera/DSCN0010.jpg")):
        w.memory.put("old-photos", f"{prefix}photo.jpg", corpus_file(name), content_type="x")
    clock = lambda: w.now  # noqa: E731
    ingest = IngestService(w.settings, w.repository, w.backends(), clock=clock)
    imports = ImportService(w.settings, w.repository, w.backends(), ingest=ingest, clock=clock)

    def run(prefix: str) -> object:
        source = ImportSource(BackendName.MEMORY, "old-photos", prefix, owner="alice")
        return imports.start(source, dry_run=False)

    # The first also records the HOT bucket; the second is every photo after.
    measure(w, lambda: run("a/"))
    metered(w).entries.clear()
    units = measure(w, lambda: run("b/"))
    assert expected.stack.imported.table_writes == units
    assert expected.stack.imported.audit_entries == metered(w).entries.total() == 1


def test_a_view_writes_what_the_book_says(expected: PriceBook) -> None:
    w = world(hot={"backend": "s3"})
    image = upload(w, TierName.HOT)
    # A draft's view writes its record (HOT's idle clock starts again, its due time
    # moves); a published photo's adds to the day's views only (policy.accessed).
    metered(w).entries.clear()
    draft = measure(w, lambda: photos(w).url(Caller("alice"), image.id))
    w.change(image, published)
    w.now += timedelta(hours=1)
    before = w.get(image)
    view = measure(w, lambda: photos(w).url(Caller("alice"), image.id))
    assert w.get(image) == before
    assert expected.stack.draft_view.table_writes == draft
    assert expected.stack.view.table_writes == view
    # Views change nothing the audit trail records.
    assert expected.stack.view.audit_entries == expected.stack.draft_view.audit_entries == 0
    assert metered(w).entries[image.id] == 1  # the publish, not the views


def test_a_variant_writes_and_keeps_what_the_book_says(expected: PriceBook) -> None:
    w = world(hot={"backend": "s3"})
    image = upload(w, TierName.HOT)
    assert image.location is not None
    # The stored photo's bytes, so it renders (World's are not an image).
    w.store(TierName.HOT).put(
        image.location.bucket,
        image.location.key,
        compress(corpus_file("photos/flowers.jpeg")).data,
        content_type="image/jpeg",
    )
    variants = VariantService(photos(w))
    repository = metered(w)
    metered(w).entries.clear()
    before = stored_bytes(repository.item(w.get(image)))
    first = measure(w, lambda: variants.image(Caller("alice"), image.id, width=320))
    later = measure(w, lambda: variants.image(Caller("alice"), image.id, width=320))
    # The first request adds it to the record with its bucket's counters (a
    # transaction); later ones read the record only (a HOT photo's are no access).
    assert expected.stack.variant.table_writes == first
    assert expected.stack.variant_view.table_writes == later == 0
    assert expected.stack.variant.audit_entries == metered(w).entries.total() == 0
    grown = stored_bytes(repository.item(w.get(image))) - before
    assert expected.stack.variant_record_bytes == grown


def test_a_publish_writes_what_the_book_says(expected: PriceBook) -> None:
    w = world(hot={"backend": "s3"})
    image = upload(w, TierName.HOT, draft_id="d1")
    metered(w).entries.clear()
    units = measure(w, lambda: photos(w).publish(Caller("alice"), "d1", [image.id]))
    assert w.get(image).published_at is not None
    assert expected.stack.publish.table_writes == units
    assert expected.stack.publish.audit_entries == metered(w).entries[image.id] == 1


def test_a_sweep_writes_its_run_record_as_the_book_says(expected: PriceBook) -> None:
    w = world()
    upload(w, TierName.TEMP)
    w.now += timedelta(days=3)
    repository = metered(w)
    repository.run_units = 0
    w.sweep()
    assert expected.stack.lifecycle.table_writes == repository.run_units


def test_an_audit_entry_writes_and_keeps_what_the_book_says() -> None:
    """One entry as the audit function writes it (``audit_model``): an owner's delete
    of a HOT photo, with the longest fields a usual entry has (a Cognito user id, the
    template's bucket names)."""
    place = AuditPlace(
        tier=TierName.HOT, backend="s3", bucket="shelflife-hot-123456789012-us-east-1"
    )
    entry = AuditEntry(
        image_id="0123456789abcdef0123456789abcdef",
        seq=f"2026-12-05T12:00:00.000000Z#{12:010d}",
        at=NOW,
        owner="3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        actor="user:3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        action=ChangeAction.DELETED,
        reason="by its owner",
        before=place,
        expires_at=NOW + timedelta(days=365),
    )
    item = audit_model(entry).serialize()
    stack = book().stack
    # The audit table has no index (an admin's search is a scan).
    assert stack.audit_entry.table_writes == item_write_units(
        None, item, transaction=False, indexes={}
    )
    assert stack.audit_entry_bytes == stored_bytes(item, {})
    assert stack.audit_retention_days == Settings.model_fields["audit_retention_days"].default


def test_a_one_offer_pipeline_writes_what_the_book_says() -> None:
    """The leanest record a pipeline deleting on the store's days needs: its key and
    its due time, in one index of what is due that projects nothing more."""
    due = {"due": Index(keys=("due_shard", "due_at"), projected=())}
    record = {
        "pk": {"S": "IMAGE#0123456789abcdef"},
        "key": {"S": "images/0123456789abcdef/" + "0" * 64 + ".jpg"},
        "due_shard": {"S": "3"},
        "due_at": {"S": "2027-03-01T03:00:00.000000+0000"},
    }
    later = {**record, "due_at": {"S": "2026-12-12T03:00:00.000000+0000"}}
    pipeline = book().pipeline
    assert pipeline.upload.table_writes == item_write_units(
        None, record, transaction=False, indexes=due
    )
    assert pipeline.publish.table_writes == item_write_units(
        record, later, transaction=False, indexes=due
    )
    assert pipeline.deletion.table_writes == item_write_units(
        later, None, transaction=False, indexes=due
    )
    assert pipeline.record_bytes == stored_bytes(record, due)


@pytest.mark.parametrize(
    ("use", "settings", "setup", "days"),
    [
        # TEMP -> HOT, another bucket on the same provider: a server-side copy.
        ("move", {}, "temp", 3),
        # Scheduled for a promotion (by an earlier version) that is now in place: the
        # record rescheduled only, what a relabel writes.
        ("relabel", {"promote_in_place": True}, "scheduled before", 3),
        # The same photo served from R2: a transfer (the serve move).
        (
            "transfer",
            {"hot": {"backend": "s3"}, **SERVING},
            "published",
            0,
        ),
        # A published photo past its 7 days: soft-deleted, its object deleted by cleanup.
        ("deletion", {}, "published", 8),
    ],
)
def test_a_lifecycle_step_writes_what_the_book_says(
    use: str, settings: dict[str, object], setup: str, days: float, expected: PriceBook
) -> None:
    w = world(**({} if setup == "scheduled before" else settings))
    image = upload(w, TierName.HOT if setup == "published" else TierName.TEMP)
    if setup == "scheduled before":
        w.settings = lifecycle_settings(**settings)
    if setup == "published":
        w.change(image, published)
    repository = metered(w)
    # Its capture facts, as ingest kept them: a deletion has them expire with it.
    repository.put_capture(image.id, CAPTURE)
    repository.by_image.clear()
    repository.entries.clear()
    w.now += timedelta(days=days)
    w.sweep()
    after = w.get(image)
    assert after.location != image.location or not after.live or after.due_at != image.due_at
    assert getattr(expected.stack, use).table_writes == repository.by_image[image.id]
    assert getattr(expected.stack, use).audit_entries == repository.entries[image.id]
