"""Invariant 5 under random histories: every event type delivered one to three times,
in random order, ends in the state a single, in-order delivery gives.

Two deployments see the same history. The reference gets each event once and its
cleanup function follows its stream in order. The other gets each event 1-3 times:
uploads' S3 notifications and its own stream's records wait in a bag and are delivered
in an order Hypothesis picks, copies included; schedules (sweeps, capacity checks), the
lifecycle's continuation messages and the API's delete (a client retrying) arrive 1-3
times in a row. A copy may even arrive after later events: a duplicate that waited out
a sweep or a delete. Whenever the bag has delivered every event at least once, and at
the end, the two deployments' states must be equal (images, buckets and counters,
objects, the upload bucket).

The reference ingests an upload when the other deployment first receives it, not when
it was made: ingest places an image in the least-full bucket *at its arrival*, so two
uploads arriving in the other order may rightly swap buckets (as two users' uploads
racing would). What must not matter is everything after the first arrival: copies,
late copies, and the stream's records in any order.

``SHELFLIFE_REDELIVERY_RUNS`` sets the number of histories (``make prove`` runs more).
"""

from __future__ import annotations

import io
import os
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule
from PIL import Image

from shelflife.adapters.table.dynamo import stream_change, stream_record
from shelflife.domain.auth import Caller
from shelflife.domain.settings import BackendName, TierName
from shelflife.domain.uploads import Upload
from tests.prove.faults import UPLOADS, Deployment
from tests.support.lifecycle import lifecycle_settings

RUNS = int(os.environ.get("SHELFLIFE_REDELIVERY_RUNS", "300"))
OWNERS = ("alice", "bob")
BROKEN = b"\xff\xd8\xff\xe0 not really a JPEG"


def tiny_image(colour: int, upload: int = 0) -> bytes:
    if colour == 0:
        # Rejected and quarantined. Unique per upload: two uploads of the same bad bytes
        # are two events, not one delivered twice, and the quarantined copy keeps the
        # name of whichever came first (test_ingest covers that sharing).
        return BROKEN + str(upload).encode()
    buffer = io.BytesIO()
    Image.new("RGB", (6 + colour % 4, 5), (colour * 40 % 256, 90, colour * 7 % 256)).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


def deployment() -> Deployment:
    # Quotas small enough for a few uploads to fill TEMP and open an overflow bucket.
    settings = lifecycle_settings(
        upload_bucket=UPLOADS, temp={"quota_bytes": 2_000}, hot={"quota_bytes": 4_000}
    )
    return Deployment(settings=settings)


def trail(world: Deployment) -> Counter[tuple[Any, ...]]:
    return Counter(
        (e.image_id, e.action, e.actor, e.reason, e.before, e.after)
        for e in world.audit_log.entries.values()
    )


@dataclass
class Pending:
    kind: str  # "upload" or "stream"
    payload: Any
    copies: int
    delivered: int = 0


class Redelivery(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.reference = deployment()
        self.world = deployment()
        self.bag: list[Pending] = []
        self.seen_stream = 0  # records of the world's stream already in the bag
        self.uploads = 0
        self.sent: list[tuple[str, bytes]] = []  # (owner, bytes) of every upload so far

    # ---- delivering ----------------------------------------------------------------

    def deliver(self, item: Pending) -> None:
        item.delivered += 1
        if item.kind == "upload":
            if item.delivered == 1:
                self.reference.ingest().ingest(item.payload)
                self.reference_follows()
            self.world.ingest().ingest(item.payload)
        else:
            old, new = self.world.repository.stream[item.payload]
            change = stream_change(stream_record(f"event-{item.payload}", old, new))
            # Both functions read the stream: each record reaches each 1-3 times.
            self.world.cleanup_service().process(change)
            self.world.audit_service().process(change)

    def collect(self, data: st.DataObject) -> None:
        """The world's new stream records join the bag, each with its number of copies."""
        stream = self.world.repository.stream
        for number in range(self.seen_stream, len(stream)):
            copies = data.draw(st.integers(1, 3), label=f"copies of stream record {number}")
            self.bag.append(Pending("stream", number, copies))
        self.seen_stream = len(stream)

    def reference_follows(self) -> None:
        self.reference.stream_mapping()

    @precondition(lambda self: self.bag)
    @rule(data=st.data())
    def deliver_one(self, data: st.DataObject) -> None:
        item = data.draw(st.sampled_from(self.bag), label="delivered")
        self.deliver(item)
        if item.delivered == item.copies:
            self.bag.remove(item)
        self.collect(data)

    def settle(self, data: st.DataObject) -> None:
        """Every event in the bag delivered at least once, in a random order; some
        copies may stay for later. Then the two states must be equal."""
        while any(item.delivered == 0 for item in self.bag):
            first = [item for item in self.bag if item.delivered == 0]
            self.deliver_one_of(first, data)
        self.assert_same()

    def deliver_one_of(self, items: list[Pending], data: st.DataObject) -> None:
        item = data.draw(st.sampled_from(items), label="delivered")
        self.deliver(item)
        keep = item.delivered < item.copies and data.draw(st.booleans(), label="copy waits")
        if not keep:
            self.bag.remove(item)
        self.collect(data)

    def assert_same(self) -> None:
        assert self.world.fingerprint() == self.reference.fingerprint()
        # Exactly one entry per change, however often and in whatever order its record
        # arrived (a duplicate's time is its upload's, which each deployment wrote).
        assert trail(self.world) == trail(self.reference)
        # Placement reads the counters: no burst of uploads overfills a bucket.
        for bucket in self.world.repository.list_buckets():
            assert bucket.used_bytes <= bucket.capacity_bytes or bucket.object_count == 1

    # ---- events --------------------------------------------------------------------

    @rule(owner=st.sampled_from(OWNERS), colour=st.integers(0, 6), data=st.data())
    def upload(self, owner: str, colour: int, data: st.DataObject) -> None:
        self.send(owner, tiny_image(colour, self.uploads + 1), data)

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def upload_again(self, data: st.DataObject) -> None:
        """The same bytes uploaded again by their owner, at any point of a history: while
        copies of the first upload, of its delete or of its moves are still on their way
        (issue 19: a late cleanup of the old place must not delete the new one)."""
        owner, content = data.draw(st.sampled_from(self.sent), label="uploaded again")
        self.send(owner, content, data)

    def send(self, owner: str, content: bytes, data: st.DataObject) -> None:
        self.uploads += 1
        self.sent.append((owner, content))
        key = f"incoming/{owner}/{self.uploads}.png"
        for world in (self.reference, self.world):
            world.stores[BackendName.S3].put(UPLOADS, key, content, content_type="image/png")
        upload = Upload(bucket=UPLOADS, key=key, size=len(content), etag=f"etag-{self.uploads}")
        self.bag.append(Pending("upload", upload, data.draw(st.integers(1, 3), label="copies")))

    @rule(
        hours=st.sampled_from([1, 49, 24 * 91, 24 * 366]), times=st.integers(1, 3), data=st.data()
    )
    def sweep(self, hours: int, times: int, data: st.DataObject) -> None:
        """The daily schedule (EventBridge delivers at least once)."""
        self.settle(data)
        for world in (self.reference, self.world):
            world.now += timedelta(hours=hours)
        self.reference.lifecycle().run()
        self.reference_follows()
        for _ in range(times):
            self.world.lifecycle().run()
            self.collect(data)
        self.settle(data)

    @rule(times=st.integers(1, 3), data=st.data())
    def sweep_in_pieces(self, times: int, data: st.DataObject) -> None:
        """A sweep that runs out of time at once and queues its continuation, which SQS
        delivers 1-3 times."""
        self.settle(data)
        for world in (self.reference, self.world):
            world.now += timedelta(hours=49)
        self.reference.lifecycle().run()
        self.reference_follows()
        stopped = self.world.lifecycle().run(remaining_ms=lambda: 0)
        self.collect(data)
        if not stopped.complete:
            for _ in range(times):
                self.world.lifecycle().resume(
                    stopped.run_id, stopped.started_at, cursor=stopped.cursor
                )
                self.collect(data)
        self.settle(data)

    @rule(times=st.integers(1, 3), data=st.data())
    def capacity_check(self, times: int, data: st.DataObject) -> None:
        """The five-minute schedule: overflow buckets, age-based cleanup."""
        self.settle(data)
        self.reference.capacity().check()
        self.reference_follows()
        for _ in range(times):
            self.world.capacity().check()
            self.collect(data)
        self.settle(data)

    @precondition(lambda self: self.reference.all_images())
    @rule(data=st.data(), times=st.integers(1, 3))
    def owner_deletes(self, data: st.DataObject, times: int) -> None:
        """DELETE /photos/{id}, the client retrying."""
        self.settle(data)
        image = data.draw(st.sampled_from(sorted(self.reference.all_images().values(), key=str)))
        caller = Caller(image.owner)
        for world, repeat in ((self.reference, 1), (self.world, times)):
            for _ in range(repeat):
                world.photos().delete(caller, image.id)
        self.reference_follows()
        self.collect(data)
        self.settle(data)

    def teardown(self) -> None:
        # Every copy still waiting, then the comparison.
        while self.bag:
            item = self.bag[0]
            self.deliver(item)
            if item.delivered >= item.copies:
                self.bag.pop(0)
            for number in range(self.seen_stream, len(self.world.repository.stream)):
                self.bag.append(Pending("stream", number, 1))
            self.seen_stream = len(self.world.repository.stream)
        self.assert_same()


Redelivery.TestCase.settings = hypothesis_settings(
    max_examples=RUNS, stateful_step_count=25, deadline=None
)
TestRedelivery = Redelivery.TestCase


def test_the_comparison_can_fail() -> None:
    # An upload delivered to one deployment and not the other is told apart.
    machine = Redelivery()
    upload = Upload(bucket=UPLOADS, key="incoming/alice/x.png", size=1, etag="e")
    content = tiny_image(3)
    machine.reference.stores[BackendName.S3].put(
        UPLOADS, upload.key, content, content_type="image/png"
    )
    machine.reference.ingest().ingest(upload)
    try:
        machine.assert_same()
    except AssertionError:
        return
    raise AssertionError("two different states compared equal")


def test_a_history_reaches_hot() -> None:
    # Not a trivial history: a sweep 49 h after an upload moves it on to HOT.
    world = Redelivery().reference
    upload = Upload(bucket=UPLOADS, key="incoming/alice/1.png", size=1, etag="e")
    world.stores[BackendName.S3].put(UPLOADS, upload.key, tiny_image(2), content_type="image/png")
    world.ingest().ingest(upload)
    world.now += timedelta(hours=49)
    world.lifecycle().run()
    world.stream_mapping()

    [image] = world.all_images().values()
    assert image.location is not None
    assert image.location.tier is TierName.HOT
