"""The audit trail through the services (issue 22, part 1): what each function's
writes say, played from the stream into the audit log as the audit function would."""

from __future__ import annotations

from datetime import timedelta

from shelflife.domain.audit import AuditEntry
from shelflife.domain.records import ChangeAction
from shelflife.domain.settings import BackendName, TierName
from shelflife.domain.storage import sha256_hex
from shelflife.domain.uploads import Upload
from tests.prove.faults import BROKEN, PHOTO, UPLOADS, Deployment, audit_problems
from tests.support.lifecycle import lifecycle_settings


def deployment() -> Deployment:
    return Deployment(settings=lifecycle_settings(upload_bucket=UPLOADS))


def upload(world: Deployment, data: bytes, name: str) -> Upload:
    key = f"incoming/alice/{name}"
    info = world.stores[BackendName.S3].put(UPLOADS, key, data, content_type="image/jpeg")
    return Upload(bucket=UPLOADS, key=key, size=info.size, etag=sha256_hex(data)[:32])


def trail(world: Deployment, image_id: str) -> list[AuditEntry]:
    world.drain()
    return world.audit_log.history(image_id, limit=100, cursor=None).items


def test_an_images_life_from_upload_to_cold_says_who_moved_it_and_why() -> None:
    world = deployment()
    stored = world.ingest().ingest(upload(world, PHOTO, "a.jpg"))
    assert stored.image is not None
    for hours in (49, 24 * 91):
        world.now += timedelta(hours=hours)
        world.lifecycle().run()

    entries = trail(world, stored.image.id)
    assert [(e.action, e.actor, e.reason) for e in entries] == [
        (ChangeAction.STORED, "ingest", None),
        (ChangeAction.MOVED, "lifecycle", "promote"),
        (ChangeAction.MOVED, "lifecycle", "archive"),
    ]
    assert [e.after.tier if e.after else None for e in entries] == [
        TierName.TEMP,
        TierName.HOT,
        TierName.COLD,
    ]
    assert [e.before.tier if e.before else None for e in entries[1:]] == [
        TierName.TEMP,
        TierName.HOT,
    ]
    assert entries[1].at == entries[0].at + timedelta(hours=49)
    assert audit_problems(world) == []


def test_a_refused_upload_is_quarantined_with_its_reason() -> None:
    world = deployment()
    result = world.ingest().ingest(upload(world, BROKEN, "broken.jpg"))
    assert result.image is not None
    [entry] = trail(world, result.image.id)
    assert (entry.action, entry.actor) == (ChangeAction.QUARANTINED, "ingest")
    assert entry.reason == result.image.rejection_reason
    assert entry.after is None


def test_a_missing_object_is_marked_lost_by_the_reconciler_with_why() -> None:
    world = deployment()
    stored = world.ingest().ingest(upload(world, PHOTO, "a.jpg"))
    assert stored.image is not None
    assert stored.image.location is not None
    place = stored.image.location
    world.stores[place.backend].delete(place.bucket, place.key)
    world.reconciler().run(fix=True)

    entries = trail(world, stored.image.id)
    assert (entries[-1].action, entries[-1].actor) == (ChangeAction.MARKED_LOST, "reconciler")
    assert entries[-1].reason == "no object, or not the one recorded"
    assert audit_problems(world) == []


def test_the_campaigns_check_finds_a_missing_entry_and_an_unknown_actor() -> None:
    world = deployment()
    stored = world.ingest().ingest(upload(world, PHOTO, "a.jpg"))
    assert stored.image is not None
    world.drain()
    assert audit_problems(world) == []
    # A write outside any actor, and its entry never written.
    image = world.repository.get_image(stored.image.id)
    world.repository.replace_image(image, image.model_copy(update={"published_at": world.now}))
    missing = audit_problems(world)
    assert any("stamped changes" in problem for problem in missing)
    world.drain()
    assert any("unknown actor" in problem for problem in audit_problems(world))
