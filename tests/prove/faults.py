"""The fault campaign (issue 9, item 1): every state-changing flow, with a crash and
separately each transient error (throttled, 5xx, a timeout after the call acted) at
every step boundary, then the system running on as it would deployed. After each run
the invariants of DESIGN.md are checked, and the matrix flow x step x fault is printed.

    python -m tests.prove.faults            # the whole campaign (make prove)
    python -m tests.prove.faults --flow ingest-stored --fault crash

A *step* is any call a service makes to the table or to a store (``Steps(None)``: reads
and writes), so "every step boundary" is between any two of them. The services are the
layer's own on the real adapters: S3 and R2 under moto, B2 on b2sdk's simulator; the
table is the in-memory repository, whose change feed plays the DynamoDB stream (the
contract suite holds it to the DynamoDB repository's behaviour).

A fifth kind is not a failure but an interleaving: the owner uploads the same bytes
again just before the step (``reupload``, issue 19), in the flows whose image came from
an upload: a delete of the old placement must never take the new one with it.

*Running on* is what the deployment does after a failed invocation: ingest's event is
delivered again; the next sweep, capacity check or reconcile run starts; the stream
mapping delivers a failed batch again and, past its attempts, the dead-letter queue is
redriven. Then the reconciler runs once in fix mode after its grace period (the
operator's ``shelflife reconcile --fix``), and once more as a dry run.

Each run passes when:

* no object is lost: every image live before the flow, and the flow's own image unless
  the flow deletes it, is live with its object and checksum (invariants 1 and 3);
* no record points to a missing object (invariant 1);
* no orphan is left after cleanup and reconcile, counters equal their records
  (invariant 4), and the final dry run finds no drift;
* no image object was deleted by anything but the cleanup function and the reconciler
  (invariant 2);
* no bucket holds more than its quota (placement checks the counters, issue 19);
* the end state equals that of the same flow run without a fault (invariant 5);
* the flow's own expectation holds (the upload stored once, the move landed, ...).

What the reconciler had to repair (an orphan a crash left, counters) is counted and
shown: the design makes it the reconciler's job, and the matrix says how often it was.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto import mock_aws

from shelflife.adapters.backends import (
    B2Backend,
    MemoryBackend,
    ProviderBackends,
    R2Backend,
    S3Backend,
    StorageBackend,
)
from shelflife.adapters.queues import MemoryQueue
from shelflife.adapters.table.dynamo import stream_change, stream_record
from shelflife.adapters.table.memory import MemoryAuditLog
from shelflife.domain.audit import UNKNOWN
from shelflife.domain.auth import Caller
from shelflife.domain.imaging import CompressionPolicy, compress
from shelflife.domain.placement import limit
from shelflife.domain.policy import accessed, published, soft_deleted
from shelflife.domain.records import BucketStatus, ChangeAction, ImageRecord, ImageState
from shelflife.domain.settings import BackendName, TierName
from shelflife.domain.storage import BucketPolicy, sha256_hex
from shelflife.domain.uploads import Upload
from shelflife.services.audit import AuditService
from shelflife.services.capacity import CapacityService
from shelflife.services.cleanup import CleanupService
from shelflife.services.ingest import IngestService
from shelflife.services.lifecycle import LifecycleService
from shelflife.services.photos import PhotoService
from shelflife.services.reconcile import DriftKind, ReconcileReport, ReconcileService
from shelflife.services.variants import VariantService
from tests.conftest import R2_ACCOUNT_ID, REGION
from tests.support.corpus import corpus_file, noisy_jpeg
from tests.support.crashes import Fault, InjectedCrash, Steps
from tests.support.lifecycle import BUCKETS, World, lifecycle_settings

UPLOADS = "shelflife-upload"
PHOTO = corpus_file("photos/flowers.jpeg")
BROKEN = corpus_file("broken/truncated.jpg")
# Services allowed to delete an image's object (invariant 2).
DELETERS = frozenset({"cleanup", "reconcile"})


# ---- the deployment -----------------------------------------------------------------


class _Deletes:
    """A store that writes down who deleted what."""

    def __init__(self, store: StorageBackend, service: str, log: list[tuple[str, str, str]]):
        self._store, self._service, self._log = store, service, log

    def delete(self, bucket: str, key: str) -> None:
        self._log.append((self._service, bucket, key))
        self._store.delete(bucket, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass
class Deployment(World):
    """The lifecycle tests' world with the rest of the stack: the upload bucket, every
    service, the stream mapping with its retries and dead-letter queue."""

    deletes: list[tuple[str, str, str]] = field(default_factory=list)
    dead_letters: MemoryQueue = field(default_factory=MemoryQueue)
    repaired: Counter[str] = field(default_factory=Counter)
    audit_log: MemoryAuditLog = field(default_factory=MemoryAuditLog)
    # The audit function's position in the stream (a mapping of its own).
    audited: int = 0
    varies: frozenset[str] = frozenset()  # Flow.varies

    def __post_init__(self) -> None:
        super().__post_init__()
        self.stores[BackendName.S3].create_bucket(UPLOADS, BucketPolicy(tier="upload"))

    def given(self, service: str, steps: Steps | None) -> ProviderBackends:
        stores: dict[str, Any] = {}
        for name, store in self.stores.items():
            logged: Any = _Deletes(store, service, self.deletes)
            stores[name.value] = steps.wrap(logged, name.value) if steps else logged
        return ProviderBackends(self.settings, given=stores)

    def table(self, steps: Steps | None) -> Any:
        return steps.wrap(self.repository, "table") if steps else self.repository

    def clock(self) -> Any:
        return self.now

    def ingest(self, steps: Steps | None = None) -> IngestService:
        uploads: Any = _Deletes(self.stores[BackendName.S3], "ingest", self.deletes)
        return IngestService(
            self.settings,
            self.table(steps),
            self.given("ingest", steps),
            uploads=steps.wrap(uploads, "uploads") if steps else uploads,
            audit=self.audit_log,
            clock=self.clock,
        )

    def lifecycle(self, steps: Steps | None = None) -> LifecycleService:
        return LifecycleService(
            self.settings, self.table(steps), self.given("lifecycle", steps), clock=self.clock
        )

    def capacity(self, steps: Steps | None = None) -> CapacityService:
        return CapacityService(
            self.settings, self.table(steps), self.given("capacity", steps), clock=self.clock
        )

    def photos(self, steps: Steps | None = None) -> PhotoService:
        return PhotoService(
            self.settings, self.table(steps), self.given("api", steps), clock=self.clock
        )

    def variants(self, steps: Steps | None = None) -> VariantService:
        return VariantService(self.photos(steps))

    def reconciler(self, steps: Steps | None = None) -> ReconcileService:
        return ReconcileService(
            self.settings, self.table(steps), self.given("reconcile", steps), clock=self.clock
        )

    def cleanup_service(self, steps: Steps | None = None) -> CleanupService:
        return CleanupService(
            self.table(steps),
            self.given("cleanup", steps),
            settings=self.settings,
            dead_letters=self.dead_letters,
            read_change=stream_change,
            clock=self.clock,
        )

    def audit_service(self) -> AuditService:
        return AuditService(self.settings, self.audit_log, clock=self.clock)

    def audit_mapping(self) -> None:
        """The audit function fed from the stream, at its own position."""
        service = self.audit_service()
        while self.audited < len(self.repository.stream):
            old, new = self.repository.stream[self.audited]
            service.process(stream_change(stream_record(f"event-{self.audited}", old, new)))
            self.audited += 1

    def stream_mapping(self, steps: Steps | None = None) -> None:
        """The cleanup function fed from the stream: each change after the last one it
        finished; a failure leaves the position where it is (the mapping delivers it
        again) until cleanup dead-letters it. The audit function reads the same stream
        at its own position."""
        self.audit_mapping()
        service = self.cleanup_service(steps)
        while self._played < len(self.repository.stream):
            old, new = self.repository.stream[self._played]
            change = stream_change(stream_record(f"event-{self._played}", old, new))
            service.process(change)
            self._played += 1

    def drain(self) -> None:
        """The stream mapping retrying until the stream is done, then the dead-letter
        queue redriven (``shelflife cleanup redrive``)."""
        for _ in range(self.settings.cleanup_max_attempts + 2):
            with contextlib.suppress(Exception):
                self.stream_mapping()
            if self._played == len(self.repository.stream):
                break
        if self.dead_letters.depth():
            self.cleanup_service().redrive()

    def settle(self) -> ReconcileReport:
        """Cleanup catches up; past the grace period the reconciler fixes what is left
        (counted in ``repaired``); cleanup catches up again; the dry run that follows is
        returned."""
        self.drain()
        self.now += timedelta(hours=self.settings.reconcile_grace_hours + 1)
        fixed = self.reconciler().run(fix=True)
        self.repaired.update(
            {kind: count for kind, count in fixed.counts.items() if kind in _DRIFT and count}
        )
        self.drain()
        return self.reconciler().run()

    # ---- what is there ---------------------------------------------------------------

    def all_images(self) -> dict[str, ImageRecord]:
        ids = {image.id for pair in self.repository.stream for image in pair if image}
        found = {image_id: self.repository.find_image(image_id) for image_id in sorted(ids)}
        return {image_id: image for image_id, image in found.items() if image is not None}

    def image_objects(self) -> set[tuple[str, str, str]]:
        return {place for place in self.objects() if place[1] != UPLOADS}

    def fingerprint(self) -> dict[str, Any]:
        """The end state, without what legitimately differs between runs (versions,
        run records, failure bookkeeping, the random token of each placement's key,
        which of two uploads of the same bytes made the image live: ``source_key`` and
        the ``filename`` it gave, and the last write's audit stamp: a retry may be
        another actor's)."""
        ignored = {"version", "source_key", "filename", "change", *self.varies}
        images = {
            image_id: _untokened(image.model_dump(mode="json", exclude=ignored))
            for image_id, image in self.all_images().items()
        }
        buckets = sorted(
            (b.tier.value, b.name, b.status.value, b.used_bytes, b.object_count)
            for b in self.repository.list_buckets()
        )
        uploads = sorted(info.key for info in self.stores[BackendName.S3].iter_objects(UPLOADS))
        return {
            "images": images,
            "buckets": buckets,
            "objects": sorted(_untokened(list(place)) for place in self.image_objects()),
            "uploads": uploads,
        }


_DRIFT = {kind.value for kind in DriftKind}
# A placement's token in a key (records.placement_key): random by design, so two runs'
# end states compare equal without it.
_TOKEN = re.compile(r"-[0-9a-f]{32}(?=\.\w+$)")


def _untokened(value: Any) -> Any:
    if isinstance(value, str):
        return _TOKEN.sub("-<token>", value)
    if isinstance(value, dict):
        return {key: _untokened(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_untokened(item) for item in value]
    return value


# ---- flows --------------------------------------------------------------------------


@dataclass
class Run:
    """One flow in one deployment: ``act`` is the invocation the fault hits,
    ``run_on`` what the deployment does next, ``expect`` the flow's own result."""

    world: Deployment
    act: Callable[[Steps | None], object]
    run_on: Callable[[], object]
    expect: Callable[[], list[str]]
    target: str | None = None  # the flow's image, which it may delete
    deletes_target: bool = False
    # The owner uploading the same bytes again (a new upload of them), and what must
    # hold after it, in the flows whose image came from an upload.
    again: Callable[[], object] | None = None
    expect_again: Callable[[], list[str]] = lambda: []


@dataclass(frozen=True)
class Flow:
    name: str
    tiers: dict[str, str]  # tier -> backend
    build: Callable[[Deployment], Run]
    settings: dict[str, Any] = field(default_factory=dict)
    # Record fields the end state may legitimately differ in from the fault-free run's
    # (a client asking again after a lost answer views the photo twice).
    varies: frozenset[str] = frozenset()


def _bystanders(world: Deployment) -> None:
    """An image in each tier that nothing should touch."""
    for tier in TierName:
        world.upload(tier, size=300, owner="carol")


def _live_in(world: Deployment, image_id: str, tier: TierName) -> list[str]:
    image = world.repository.find_image(image_id)
    if image is None or image.state is not ImageState.ACTIVE or image.location is None:
        return [f"{image_id} is not live: {image.state if image else 'no record'}"]
    if image.tier is not tier:  # the policy's tier (HOT for one promoted in place)
        return [f"{image_id} is in {image.tier}, expected {tier}"]
    return []


def _ingest(data: bytes, outcome: ImageState) -> Callable[[Deployment], Run]:
    def build(world: Deployment) -> Run:
        key = "incoming/alice/photo.jpg"
        s3 = world.stores[BackendName.S3]
        info = s3.put(UPLOADS, key, data, content_type="image/jpeg")
        upload = Upload(bucket=UPLOADS, key=key, size=info.size, etag=sha256_hex(data)[:32])

        def expect() -> list[str]:
            problems = []
            mine = world.repository.images_by_owner("alice", limit=100).items
            new = [image for image in mine if image.state is outcome]
            if len(new) != 1:
                problems.append(f"{len(new)} {outcome} images for one upload")
            if s3.exists(UPLOADS, key):
                problems.append("the upload is still in incoming/")
            if outcome is ImageState.REJECTED and new:
                kept = new[0].quarantine_key or ""
                if not s3.exists(UPLOADS, kept) or s3.get(UPLOADS, kept).data != data:
                    problems.append("the rejected original is not in quarantine")
            return problems

        def again() -> None:
            _upload(world, data, "incoming/alice/photo-again.jpg")

        def expect_again() -> list[str]:
            mine = world.repository.images_by_owner("alice", limit=100).items
            return [] if len([i for i in mine if i.state is outcome]) == 1 else ["two images"]

        return Run(
            world,
            act=lambda steps: world.ingest(steps).ingest(upload),
            run_on=lambda: world.ingest().ingest(upload),  # the event again
            expect=expect,
            # A rejected upload's bytes sent again share one quarantined copy, named
            # after whichever arrived first: the end state rightly depends on the order.
            again=again if outcome is ImageState.ACTIVE else None,
            expect_again=expect_again,
        )

    return build


def _placed_at_once(world: Deployment) -> Run:
    """Two uploads choose the same TEMP bucket before either is counted in it, and it
    has room for one (found 2026-12-06: both were activated, past the threshold). The
    invocation is the upload whose activation comes second: refused (``NoRoom``), it
    moves its claim to the overflow bucket it opens, puts there and activates."""
    base = BUCKETS[TierName.TEMP]
    mine, theirs = noisy_jpeg(1), noisy_jpeg(2)
    policy = CompressionPolicy.from_settings(world.settings)
    sizes = [len(compress(data, policy).data) for data in (mine, theirs)]
    record = world.repository.get_bucket(TierName.TEMP.value, base)
    room = limit(record, world.settings.overflow_threshold_percent) - record.used_bytes
    world.upload(TierName.TEMP, size=room - max(sizes))  # too young for cleanup
    key = "incoming/alice/photo.jpg"
    info = world.stores[BackendName.S3].put(UPLOADS, key, mine, content_type="image/jpeg")
    upload = Upload(bucket=UPLOADS, key=key, size=info.size, etag=sha256_hex(mine)[:32])
    raced: list[str] = []
    put_capture = world.repository.put_capture

    def racing(image_id: str, capture: Any) -> None:
        put_capture(image_id, capture)  # this upload has chosen and put: the other runs
        if not raced:
            raced.append("incoming/alice/theirs.jpg")
            _upload(world, theirs, raced[0])

    world.repository.put_capture = racing  # type: ignore[method-assign]

    def expect() -> list[str]:
        problems = []
        if not raced:
            problems.append("the other upload never ran: no race")
        live = [i for i in world.repository.images_by_owner("alice", limit=100).items if i.live]
        places = sorted(i.location.bucket for i in live if i.location and i.stored_size < 10_000)
        if places != [base, f"{base}-1"]:
            problems.append(f"the two uploads are in {places}, expected {base} and {base}-1")
        for bucket in world.repository.list_buckets(TierName.TEMP.value):
            if bucket.used_bytes > limit(bucket, world.settings.overflow_threshold_percent):
                problems.append(f"{bucket.name} is past its threshold: {bucket.used_bytes}")
        return problems

    return Run(
        world,
        act=lambda steps: world.ingest(steps).ingest(upload),
        run_on=lambda: world.ingest().ingest(upload),  # the event again
        expect=expect,
    )


def _upload(world: Deployment, data: bytes, key: str) -> Any:
    """An upload of ``data`` by alice, delivered to ingest once."""
    info = world.stores[BackendName.S3].put(UPLOADS, key, data, content_type="image/jpeg")
    upload = Upload(bucket=UPLOADS, key=key, size=info.size, etag=sha256_hex(data)[:32])
    return world.ingest().ingest(upload)


def _deleted_upload(reconcile: bool) -> Callable[[Deployment], Run]:
    """alice's photo, ingested and deleted by her; the invocation is the cleanup of the
    delete (or, when cleanup missed it, the reconciler's fix past the grace period). With
    ``reupload`` she uploads the same bytes again at every step of it."""

    def build(world: Deployment) -> Run:
        image = _upload(world, PHOTO, "incoming/alice/photo.jpg").image
        assert image is not None
        world.drain()
        world.photos().delete(Caller("alice"), image.id)
        if reconcile:
            world._played = len(world.repository.stream)  # cleanup missed the delete
            world.now += timedelta(hours=world.settings.reconcile_grace_hours + 1)

        def expect() -> list[str]:
            current = world.repository.find_image(image.id)
            if current is None or current.state is not ImageState.DELETED:
                return [f"{image.id} is not deleted: {current.state if current else None}"]
            return []

        def act(steps: Steps | None) -> None:
            if reconcile:
                world.reconciler(steps).run(fix=True)
            else:
                world.stream_mapping(steps)

        return Run(
            world,
            act=act,
            run_on=world.drain if not reconcile else lambda: world.reconciler().run(fix=True),
            expect=expect,
            target=image.id,
            deletes_target=True,
            again=lambda: _upload(world, PHOTO, "incoming/alice/photo-again.jpg"),
            expect_again=lambda: _live_in(world, image.id, TierName.TEMP),
        )

    return build


def _move(source: TierName, destination: TierName) -> Callable[[Deployment], Run]:
    def build(world: Deployment) -> Run:
        if source is TierName.TEMP:
            image = world.upload(TierName.TEMP, age=timedelta(days=3))
        elif source is TierName.HOT:  # large enough for a year in COLD to pay
            image = world.upload(TierName.HOT, age=timedelta(days=91), size=400_000)
        else:
            image = world.change(world.upload(TierName.COLD, age=timedelta(days=10)), accessed)

        def run_on() -> None:
            world.drain()
            world.lifecycle().run()  # the next sweep

        return Run(
            world,
            act=lambda steps: world.lifecycle(steps).run(),
            run_on=run_on,
            expect=lambda: _live_in(world, image.id, destination),
            target=image.id,
        )

    return build


def _serve(world: Deployment) -> Run:
    """A photo published now, moved to the serving buckets (R2) by the lifecycle the
    API asks; the daily sweep is what runs on."""
    image = world.change(world.upload(TierName.HOT, age=timedelta(days=3)), published)

    def expect() -> list[str]:
        problems = _live_in(world, image.id, TierName.HOT)
        current = world.repository.find_image(image.id)
        where = current.location if current is not None else None
        if not problems and where is not None and where.backend is not BackendName.R2:
            problems.append(f"{image.id} is on {where.backend}, expected r2")
        return problems

    def run_on() -> None:
        world.drain()
        world.lifecycle().run()  # the next sweep

    return Run(
        world,
        act=lambda steps: world.lifecycle(steps).serve([image.id]),
        run_on=run_on,
        expect=expect,
        target=image.id,
    )


def _expire(world: Deployment) -> Run:
    image = world.upload(TierName.COLD, age=timedelta(days=400))

    def expect() -> list[str]:
        current = world.repository.find_image(image.id)
        if current is not None and current.live:
            return [f"{image.id} is still live after its last day"]
        return []

    def run_on() -> None:
        world.drain()
        world.lifecycle().run()

    return Run(
        world,
        act=lambda steps: world.lifecycle(steps).run(),
        run_on=run_on,
        expect=expect,
        target=image.id,
        deletes_target=True,
    )


def _owner_deletes(world: Deployment) -> Run:
    image = world.upload(TierName.HOT)
    alice = Caller("alice")

    def expect() -> list[str]:
        current = world.repository.find_image(image.id)
        if current is None or current.state is not ImageState.DELETED:
            return [f"{image.id} is not deleted: {current.state if current else 'no record'}"]
        return []

    return Run(
        world,
        act=lambda steps: world.photos(steps).delete(alice, image.id),
        run_on=lambda: world.photos().delete(alice, image.id),  # the client tries again
        expect=expect,
        target=image.id,
        deletes_target=True,
    )


def _variant(world: Deployment) -> Run:
    """alice's photo in COLD, a 1280 px variant of it asked through the API (a look at
    the photo, not a thumbnail): read in place (no restore), rendered, put on HOT and
    added to the record, the access recorded; the client asks again when it got no
    answer."""
    data = compress(corpus_file("photos/flowers.jpeg")).data
    image = world.upload(TierName.COLD, size=len(data), stored_sha256=sha256_hex(data))
    assert image.location is not None
    # Real bytes where the world's upload wrote placeholder ones of the same size.
    world.store(TierName.COLD).put(
        image.location.bucket, image.location.key, data, content_type="image/jpeg"
    )
    world.drain()
    alice = Caller("alice")
    answered: list[str] = []

    def act(steps: Steps | None) -> None:
        answered.append(world.variants(steps).image(alice, image.id, width=1280).url)

    def run_on() -> None:
        if not answered:
            world.variants().image(alice, image.id, width=1280)

    def expect() -> list[str]:
        current = world.repository.find_image(image.id)
        if current is None or [v.name for v in current.variants] != ["1280xauto-contain.jpg"]:
            return [f"{image.id} has not its one variant: {current}"]
        return _live_in(world, image.id, TierName.COLD)

    return Run(world, act=act, run_on=run_on, expect=expect, target=image.id)


def _overflow(tier: TierName) -> Callable[[Deployment], Run]:
    def build(world: Deployment) -> Run:
        base = BUCKETS[tier]
        quota = world.settings.tier(tier).quota_bytes
        assert quota is not None
        used = world.repository.get_bucket(tier.value, base).used_bytes  # the bystander
        world.upload(tier, size=quota * 96 // 100 - used)  # too young for cleanup
        store = world.store(tier)

        def expect() -> list[str]:
            problems = []
            names = [b.name for b in world.repository.list_buckets(tier.value)]
            if names != [base, f"{base}-1"]:
                problems.append(f"{tier} buckets are {names}, expected {base} and {base}-1")
            if world.repository.get_bucket(tier.value, base).status is not BucketStatus.FULL:
                problems.append(f"{base} is not marked full")
            if not store.bucket_exists(f"{base}-1"):
                problems.append(f"{base}-1 was recorded but not created")
            else:
                made = store.describe_bucket(f"{base}-1")
                if not (made.private and made.encrypted and made.tls_only is not False):
                    problems.append(f"{base}-1 is not private, encrypted and TLS-only: {made}")
                # R2 has no tagging API; S3 buckets carry their tier.
                tagged = (
                    not isinstance(store, S3Backend)
                    or not store.applies_access_policies
                    or (made.tags.get("shelflife:tier") == tier.value)
                )
                if not tagged:
                    problems.append(f"{base}-1 is not tagged with its tier: {made.tags}")
            return problems

        return Run(
            world,
            act=lambda steps: world.capacity(steps).check(),
            run_on=lambda: world.capacity().check(),  # five minutes later
            expect=expect,
        )

    return build


def _reconcile_fix(world: Deployment) -> Run:
    """Drift of every kind the fix repairs: an orphan past the grace period, a deleted
    record whose object cleanup never saw, counters off."""
    orphan = b"nobody's" * 50
    hot = world.store(TierName.HOT)
    key = f"images/x/{sha256_hex(orphan)}.jpg"
    hot.put(BUCKETS[TierName.HOT], key, orphan, content_type="image/jpeg")
    forgotten = world.upload(TierName.HOT)
    world.change(forgotten, soft_deleted)
    world._played = len(world.repository.stream)  # cleanup missed it
    world.repository.set_bucket_counters(
        "temp", BUCKETS[TierName.TEMP], used_bytes=1, object_count=5
    )
    # The stores stamp objects with the real clock: the run comes past the grace period.
    world.now += timedelta(hours=world.settings.reconcile_grace_hours + 1)

    def expect() -> list[str]:
        final = world.reconciler().run()
        return [f"drift left: {dict(final.counts)}"] if final.drift_found else []

    return Run(
        world,
        act=lambda steps: world.reconciler(steps).run(fix=True),
        run_on=lambda: world.reconciler().run(fix=True),  # the operator runs it again
        expect=expect,
    )


def _cleanup(world: Deployment) -> Run:
    """The stream shows a soft delete and a finished move; cleanup is the invocation."""
    deleted = world.upload(TierName.HOT)
    moved = world.upload(TierName.TEMP, age=timedelta(days=3))
    world.drain()
    world.change(deleted, soft_deleted)
    world.lifecycle().run()  # moves `moved` to HOT; its TEMP copy is released

    def expect() -> list[str]:
        problems = _live_in(world, moved.id, TierName.HOT)
        assert deleted.location is not None
        assert moved.location is not None
        for place in (deleted.location, moved.location):
            if world.stores[place.backend].exists(place.bucket, place.key):
                problems.append(f"{place.bucket}/{place.key} was released and is still there")
        return problems

    return Run(
        world,
        act=lambda steps: world.stream_mapping(steps),
        run_on=world.drain,  # the mapping delivers the batch again
        expect=expect,
        target=deleted.id,
        deletes_target=True,
    )


def _pairs() -> list[Flow]:
    names = ("s3", "r2", "b2")
    return [
        Flow(f"move-{a}-to-{b}", {"temp": a, "hot": b}, _move(TierName.TEMP, TierName.HOT))
        for a in names
        for b in names
    ]


FLOWS: dict[str, Flow] = {
    flow.name: flow
    for flow in [
        Flow(
            "ingest-stored",
            {"temp": "s3"},
            _ingest(corpus_file("photos/flowers.jpeg"), ImageState.ACTIVE),
        ),
        Flow(
            "ingest-placed-at-once",
            {"temp": "s3"},
            _placed_at_once,
            {"temp": {"quota_bytes": 100_000}},
        ),
        Flow(
            "ingest-rejected",
            {"temp": "s3"},
            _ingest(corpus_file("broken/truncated.jpg"), ImageState.REJECTED),
        ),
        *_pairs(),
        Flow("archive-r2-to-b2", {"hot": "r2", "cold": "b2"}, _move(TierName.HOT, TierName.COLD)),
        Flow("restore-b2-to-s3", {"hot": "s3", "cold": "b2"}, _move(TierName.COLD, TierName.HOT)),
        Flow(
            "serve-s3-to-r2",
            {"hot": "s3"},
            _serve,
            {"serve": {"backend": "r2", "bucket": "shelflife-serve"}, "serve_published": "always"},
        ),
        Flow("expire-b2", {"cold": "b2"}, _expire),
        Flow("delete-by-owner", {"hot": "r2"}, _owner_deletes),
        Flow(
            "variant-of-b2-on-r2",
            {"hot": "r2", "cold": "b2"},
            _variant,
            varies=frozenset({"access_count", "last_accessed_at"}),
        ),
        Flow(
            "overflow-s3",
            {"temp": "s3"},
            _overflow(TierName.TEMP),
            {"temp": {"quota_bytes": 10_000}},
        ),
        Flow(
            "overflow-r2",
            {"hot": "r2"},
            _overflow(TierName.HOT),
            {"hot": {"quota_bytes": 10_000}},
        ),
        Flow("reconcile-fix", {"temp": "s3", "hot": "r2", "cold": "b2"}, _reconcile_fix),
        Flow("cleanup", {"temp": "s3", "hot": "b2"}, _cleanup),
        Flow("cleanup-of-a-deleted-upload", {"temp": "s3"}, _deleted_upload(False)),
        Flow("reconcile-of-a-deleted-upload", {"temp": "r2"}, _deleted_upload(True)),
    ]
}


# ---- one run ------------------------------------------------------------------------


@functools.cache
def _aws_stores() -> tuple[S3Backend, R2Backend]:
    """The S3 and R2 adapters, made once for the whole campaign: making one builds a
    boto3 client, which parses botocore's service model (a third of a second). They
    hold nothing but the client, and moto serves any client made after it was
    imported, so each run's fresh ``mock_aws`` state is all that changes."""
    return S3Backend(region=REGION), R2Backend.for_account(
        R2_ACCOUNT_ID, access_key_id="testing", secret_access_key="testing"
    )


def _stores() -> dict[BackendName, StorageBackend]:
    s3, r2 = _aws_stores()
    return {
        BackendName.S3: s3,
        BackendName.R2: r2,
        BackendName.B2: B2Backend.simulated(),
        BackendName.MEMORY: MemoryBackend(),
    }


@functools.cache
def _started() -> datetime:
    """Every run's clock: the campaign's start, not the lifecycle tests' fixed date, as
    S3, R2 and B2 stamp objects with the real clock and the reconciler's grace period
    compares the two; the same for every run, so end states compare equal."""
    return datetime.now(UTC).replace(microsecond=0)


@contextlib.contextmanager
def deployment(flow: Flow) -> Iterator[Run]:
    with mock_aws():
        tiers: dict[str, Any] = {tier: {"backend": backend} for tier, backend in flow.tiers.items()}
        for tier, extra in flow.settings.items():
            if isinstance(extra, dict):
                tiers.setdefault(tier, {}).update(extra)
            else:  # a setting of its own (serve_published)
                tiers[tier] = extra
        settings = lifecycle_settings(upload_bucket=UPLOADS, **tiers)
        world = Deployment(settings=settings, stores=_stores(), now=_started(), varies=flow.varies)
        _bystanders(world)
        world.drain()
        yield flow.build(world)


@dataclass
class Result:
    problems: list[str]
    repaired: Counter[str]
    fingerprint: dict[str, Any]


def run(flow: Flow, injection: tuple[int, Fault] | None, *, again_after: bool = False) -> Result:
    """One run of ``flow`` with ``injection`` (a fault, or a re-upload, before the step
    of that number); with ``again_after``, the re-upload after the invocation instead
    (the reference a re-upload at any step is held to)."""
    with deployment(flow) as case:
        world = case.world
        live_before = {i for i, image in world.all_images().items() if image.live}
        steps = Steps(None)
        reupload = again_after or (injection is not None and injection[1] is Fault.REUPLOAD)
        if reupload and case.again is None:
            raise ValueError(f"{flow.name} has no upload to repeat")
        if injection is not None and injection[1] is Fault.REUPLOAD:
            assert case.again is not None
            steps.before = (injection[0], case.again)
        elif injection is not None:
            steps.inject(*injection)
        with contextlib.suppress(InjectedCrash, Exception):
            # The invocation fails; what it did before the fault stays done.
            case.act(steps)
        if again_after:
            assert case.again is not None
            case.again()
        problems: list[str] = []
        try:
            case.run_on()
        except Exception as error:  # a second failure in a row is itself a finding
            problems.append(f"running on failed: {error!r}")
        final = world.settle()
        problems += case.expect_again() if reupload else case.expect()
        if reupload:
            case.deletes_target = False  # the same bytes came back: it must be live
        problems += _invariants(world, live_before, case, final)
        return Result(problems, world.repaired, world.fingerprint())


def repeats_an_upload(flow: Flow) -> bool:
    with deployment(flow) as case:
        return case.again is not None


def audit_problems(world: Deployment) -> list[str]:
    """The audit trail against the stream it came from: one entry per stamped write
    (however often it was delivered), none by an unknown actor, and each image's last
    entry says where the image is."""
    problems = []
    entries = world.audit_log.entries
    stamped = {(new.id, new.version) for _, new in world.repository.stream if new and new.change}
    written = Counter(
        (entry.image_id, int(entry.seq.rpartition("#")[2]))
        for entry in entries.values()
        if entry.action is not ChangeAction.DEDUPLICATED
    )
    if set(written) != stamped or any(count != 1 for count in written.values()):
        problems.append(f"audit: {len(written)} entries for {len(stamped)} stamped changes")
    duplicates = Counter(
        entry.seq.rpartition("#")[2]
        for entry in entries.values()
        if entry.action is ChangeAction.DEDUPLICATED
    )
    problems += [
        f"audit: duplicate upload {token} entered {n} times"
        for token, n in duplicates.items()
        if n > 1
    ]
    problems += [
        f"audit: {entry.image_id} {entry.action} by an unknown actor"
        for entry in entries.values()
        if entry.actor == UNKNOWN
    ]
    for image in world.all_images().values():
        trail = [
            entry
            for (image_id, _), entry in sorted(entries.items())
            if image_id == image.id and entry.action is not ChangeAction.DEDUPLICATED
        ]
        if image.state is ImageState.ACTIVE and (not trail or trail[-1].after is None):
            problems.append(f"audit: {image.id} is live and its trail does not say where")
        elif image.state is ImageState.ACTIVE and trail[-1].after is not None:
            assert image.location is not None
            if trail[-1].after.bucket != image.location.bucket:
                problems.append(f"audit: {image.id}'s trail ends elsewhere than the image")
    return problems


def _invariants(
    world: Deployment, live_before: set[str], case: Run, final: ReconcileReport
) -> list[str]:
    problems = audit_problems(world)
    images = world.all_images()
    referenced: set[tuple[str, str, str]] = set()
    for image in images.values():
        for place in image.referenced():
            referenced.add((world.stores[place.backend].name, place.bucket, place.key))
        if not image.live:
            continue
        if image.id in world.repository.capture_expiry:
            # A re-upload racing the cleanup of its deletion (found 2026-12-06).
            problems.append(f"facts: {image.id} is live and its capture facts expire")
        assert image.location is not None
        store = world.stores[image.location.backend]
        if not store.exists(image.location.bucket, image.location.key):
            problems.append(f"missing: {image.id} points to nothing")
        elif sha256_hex(store.get(image.location.bucket, image.location.key).data) != (
            image.stored_sha256
        ):
            problems.append(f"corrupt: {image.id}'s object does not match its checksum")
    for image_id in sorted(live_before):
        if image_id == case.target and case.deletes_target:
            continue
        now = images.get(image_id)
        if now is None or not now.live:
            problems.append(f"lost: {image_id} was live and is not")
    orphans = world.image_objects() - referenced
    if orphans:
        problems.append(f"orphans after cleanup and reconcile: {sorted(orphans)}")
    if final.drift_found:
        problems.append(f"the final reconcile found drift: {dict(final.counts)}")
    for record in world.repository.list_buckets():
        if record.used_bytes > record.capacity_bytes and record.object_count > 1:
            problems.append(f"{record.name} is past its quota: {record.used_bytes} bytes")
    image_buckets = {name for _, name, _ in world.objects()} - {UPLOADS}
    for service, bucket, key in world.deletes:
        if service not in DELETERS and (bucket in image_buckets or key.startswith("images/")):
            problems.append(f"{service} deleted {bucket}/{key} (invariant 2)")
    return problems


# ---- the campaign -------------------------------------------------------------------


@dataclass
class Cell:
    flow: str
    step: int
    call: str
    fault: Fault
    problems: list[str]
    repaired: Counter[str]


def clean_steps(flow: Flow) -> tuple[list[str], Result]:
    with deployment(flow) as case:
        steps = Steps(None)
        case.act(steps)
    return steps.log, run(flow, None)


def campaign(flows: list[Flow], faults: list[Fault], *, out: Any = sys.stdout) -> list[Cell]:
    cells = []
    for flow in flows:
        log, reference = clean_steps(flow)
        if reference.problems:
            raise SystemExit(f"{flow.name} fails without a fault: {reference.problems}")
        kinds = faults
        again: Result | None = None
        if Fault.REUPLOAD in faults and repeats_an_upload(flow):
            again = run(flow, None, again_after=True)
            if again.problems:
                raise SystemExit(f"{flow.name} fails with a re-upload after: {again.problems}")
        else:
            kinds = [fault for fault in faults if fault is not Fault.REUPLOAD]
        for number, call in enumerate(log, 1):
            for fault in kinds:
                result = run(flow, (number, fault))
                problems = list(result.problems)
                expected = again if fault is Fault.REUPLOAD else reference
                assert expected is not None
                if result.fingerprint != expected.fingerprint:
                    problems.append("end state differs from the run without a fault")
                # What the reconciler repaired beyond the fault-free run's repairs.
                repaired = result.repaired - reference.repaired
                cells.append(Cell(flow.name, number, call, fault, problems, repaired))
        _print_flow(flow.name, [c for c in cells if c.flow == flow.name], kinds, out)
    return cells


def _mark(cell: Cell) -> str:
    if cell.problems:
        return "FAIL"
    return "pass*" if cell.repaired else "pass"


def _print_flow(name: str, cells: list[Cell], faults: list[Fault], out: Any) -> None:
    width = max([len(c.call) for c in cells] + [4])
    print(f"\n{name}", file=out)
    print(
        f"  {'step':>4}  {'call':<{width}}  " + "  ".join(f"{f.value:<9}" for f in faults), file=out
    )
    for step in sorted({c.step for c in cells}):
        row = [c for c in cells if c.step == step]
        marks = "  ".join(f"{_mark(c):<9}" for c in row)
        print(f"  {step:>4}  {row[0].call:<{width}}  {marks}", file=out)
    for cell in cells:
        for problem in cell.problems:
            print(f"    FAIL step {cell.step} {cell.fault}: {problem}", file=out)


def summary(cells: list[Cell], seconds: float) -> str:
    failed = [c for c in cells if c.problems]
    repaired: Counter[str] = Counter()
    for cell in cells:
        repaired.update(cell.repaired)
    flows = len({c.flow for c in cells})
    lost = sum(1 for c in cells for p in c.problems if p.startswith("lost"))
    missing = sum(1 for c in cells for p in c.problems if p.startswith("missing"))
    orphans = sum(1 for c in cells for p in c.problems if p.startswith("orphans"))
    with_repairs = sum(1 for c in cells if c.repaired)
    kinds = len({c.fault for c in cells})
    return (
        f"{len(cells)} runs ({flows} flows x their steps x {kinds} faults): "
        f"{len(cells) - len(failed)} passed, {len(failed)} failed; "
        f"objects lost {lost}, records pointing to missing objects {missing}, "
        f"orphans after cleanup and reconcile {orphans}; "
        f"pass* = the reconciler repaired something ({with_repairs} runs: "
        f"{dict(sorted(repaired.items())) or 'nothing'}); {seconds:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flow", action="append", choices=sorted(FLOWS), help="repeatable")
    parser.add_argument("--fault", action="append", choices=[f.value for f in Fault])
    args = parser.parse_args(argv)
    # Thousands of injected failures log thousands of warnings; the matrix is the report.
    logging.disable(logging.WARNING)
    flows = [FLOWS[name] for name in args.flow] if args.flow else list(FLOWS.values())
    faults = [Fault(value) for value in args.fault] if args.fault else list(Fault)
    started = time.monotonic()
    cells = campaign(flows, faults)
    print("\n" + summary(cells, time.monotonic() - started))
    return 1 if any(c.problems for c in cells) else 0


if __name__ == "__main__":
    sys.exit(main())
