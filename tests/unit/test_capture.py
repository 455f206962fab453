"""Capture metadata (issue 22, part 2): what the camera recorded, kept beside the record
while the stored image keeps nothing; the labels a client attaches; gone with the
image."""

from __future__ import annotations

from datetime import datetime

import pytest

from shelflife.domain.auth import Caller
from shelflife.domain.capture import (
    MAX_LABELS,
    Capture,
    capture_facts,
    check_labels,
    label_metadata,
    labels_of,
)
from shelflife.domain.errors import InvalidArgument
from shelflife.domain.records import ImageState
from shelflife.domain.settings import BackendName
from shelflife.domain.storage import sha256_hex
from shelflife.domain.uploads import Upload
from tests.prove.faults import BROKEN, UPLOADS, Deployment
from tests.support.corpus import corpus_file
from tests.support.lifecycle import lifecycle_settings

CAMERA = corpus_file("camera/DSCN0010.jpg")  # a Nikon's EXIF, with a GPS fix


def test_a_cameras_facts_are_read_and_its_location_is_not() -> None:
    facts = capture_facts(CAMERA)
    assert facts.model_dump(exclude_none=True) == {
        "taken_at": "2008-10-22T16:28:39",
        "camera_make": "NIKON",
        "camera_model": "COOLPIX P6000",
        "exposure_time": "1/77",
        "f_number": 5.9,
        "iso": 64,
        "focal_length_mm": 24.0,
        "width": 640,
        "height": 480,
        "orientation": 1,
        "labels": {},
    }
    # The file has a GPS fix: nothing of it is kept, under any name.
    text = facts.model_dump_json().lower()
    assert all(word not in text for word in ("gps", "latitude", "longitude", "serial"))


@pytest.mark.parametrize(("name", "width"), [("formats/4.webp", None), ("photos/320x240.jpg", 320)])
def test_a_file_without_exif_has_its_dimensions_only(name: str, width: int | None) -> None:
    facts = capture_facts(corpus_file(name))
    assert facts.camera_make is None
    assert facts.taken_at is None
    assert facts.width is not None
    if width is not None:
        assert facts.width == width


def test_an_unreadable_upload_has_no_facts_but_keeps_its_labels() -> None:
    assert capture_facts(b"not an image", {"trip": "rome"}) == Capture(labels={"trip": "rome"})


@pytest.mark.parametrize(
    "labels",
    [
        {f"k{n}": "v" for n in range(MAX_LABELS + 1)},
        {"Upper": "v"},
        {"-dash": "v"},
        {"k": "é"},
        {"k": "x" * 257},
        {f"k{n}": "x" * 200 for n in range(8)},
    ],
)
def test_labels_past_their_limits_are_refused(labels: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        check_labels(labels)
    # Carried by an upload that this store did not sign, they are dropped, not kept.
    assert labels_of({f"label-{k}": v for k, v in labels.items()}) == {}


def test_labels_travel_as_object_metadata() -> None:
    metadata = label_metadata({"trip": "rome", "roll": "12"})
    assert metadata == {"label-trip": "rome", "label-roll": "12"}
    assert labels_of({**metadata, "draft-id": "d1"}) == {"trip": "rome", "roll": "12"}


# ---- through ingest and cleanup ------------------------------------------------------


def deployment() -> Deployment:
    return Deployment(settings=lifecycle_settings(upload_bucket=UPLOADS))


def ingest(world: Deployment, data: bytes, name: str, **metadata: str) -> Upload:
    key = f"incoming/alice/{name}"
    info = world.stores[BackendName.S3].put(
        UPLOADS, key, data, content_type="image/jpeg", metadata=metadata or None
    )
    upload = Upload(bucket=UPLOADS, key=key, size=info.size, etag=sha256_hex(data)[:32])
    world.ingest().ingest(upload)
    return upload


def test_ingest_keeps_the_facts_and_labels_and_cleanup_lets_them_go_with_the_image() -> None:
    world = deployment()
    ingest(world, CAMERA, "a.jpg", **{"label-trip": "rome"})
    [image] = world.repository.images_by_owner("alice", limit=10).items
    kept = world.repository.find_capture(image.id)
    assert kept is not None
    assert (kept.camera_model, kept.labels) == ("COOLPIX P6000", {"trip": "rome"})

    deleted = world.photos().delete(Caller("alice"), image.id)
    world.drain()
    # They go with the record: the table's TTL removes both on the same day.
    assert world.repository.capture_expiry[image.id] == deleted.expires_at

    # The same bytes again: live again, its facts kept for good.
    ingest(world, CAMERA, "again.jpg")
    world.drain()
    assert world.repository.get_image(image.id).state is ImageState.ACTIVE
    assert image.id not in world.repository.capture_expiry
    assert world.repository.find_capture(image.id) is not None


def test_a_refused_upload_keeps_no_facts() -> None:
    world = deployment()
    ingest(world, BROKEN, "broken.jpg")
    [image] = world.repository.images_by_owner("alice", limit=10).items
    assert image.state is ImageState.REJECTED
    assert world.repository.find_capture(image.id) is None


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_re_upload_racing_the_cleanup_of_its_deletion_keeps_its_facts(
    when: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bytes uploaded again while cleanup handles the deletion: just before
    it writes the old facts' expiry, or just after (before it reads the record). Either
    way the new upload's facts stay, with no expiry."""
    world = deployment()
    ingest(world, CAMERA, "a.jpg")
    [image] = world.repository.images_by_owner("alice", limit=10).items
    world.photos().delete(Caller("alice"), image.id)
    expire = world.repository.expire_capture
    raced: list[Upload] = []

    def racing(image_id: str, at: datetime) -> None:
        if when == "after":
            expire(image_id, at)
        if not raced:
            raced.append(ingest(world, CAMERA, "again.jpg", **{"label-trip": "oslo"}))
        if when == "before":
            expire(image_id, at)

    monkeypatch.setattr(world.repository, "expire_capture", racing)
    world.drain()
    assert raced, "cleanup never expired the facts: the race was not run"
    assert world.repository.get_image(image.id).state is ImageState.ACTIVE
    assert image.id not in world.repository.capture_expiry
    kept = world.repository.find_capture(image.id)
    assert kept is not None
    assert kept.labels == {"trip": "oslo"}
