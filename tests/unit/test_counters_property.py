"""Invariant 4 under random histories: after any sequence of ingests (and redeliveries
of their events), moves, soft deletes, record removals and age-based cleanups, every
bucket's counters equal the sum of the live records that point to it."""

from __future__ import annotations

import io
from datetime import timedelta

from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from PIL import Image

from shelflife.domain.errors import Conflict
from shelflife.domain.policy import soft_deleted
from shelflife.domain.records import BucketRecord, ImageRecord
from shelflife.domain.settings import TierName
from shelflife.domain.uploads import Upload
from shelflife.services.capacity import CapacityService
from shelflife.services.ingest import Outcome
from tests.unit.test_ingest import NOW, TEMP, World

OTHER = "shelflife-temp-2"


def tiny_png(colour: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4 + colour % 5, 4), (colour * 37 % 256, colour * 11 % 256, colour)).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


class Histories(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.world.storage.create_bucket(
            OTHER, self.world.service().placement.bucket_policy(TierName.TEMP)
        )
        self.world.service().placement.buckets(TierName.TEMP)
        self.world.repository.add_bucket(
            BucketRecord(
                tier=TierName.TEMP,
                backend=self.world.settings.temp.backend,
                name=OTHER,
                capacity_bytes=10**9,
                created_at=NOW,
            )
        )
        self.delivered: list[Upload] = []
        self.ids: set[str] = set()

    def live(self) -> list[ImageRecord]:
        found = (self.world.repository.find_image(i) for i in sorted(self.ids))
        return [image for image in found if image is not None and image.live]

    @rule(owner=st.sampled_from(["alice", "bob"]), colour=st.integers(0, 40))
    def upload(self, owner: str, colour: int) -> None:
        upload = self.world.upload(tiny_png(colour), f"incoming/{owner}/{colour}.png")
        result = self.world.ingest(upload)
        self.delivered.append(upload)
        if result.image is not None:
            self.ids.add(result.image.id)

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        upload = data.draw(st.sampled_from(self.delivered))
        assert self.world.ingest(upload).outcome in (Outcome.GONE, Outcome.DUPLICATE)

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def move(self, data: st.DataObject) -> None:
        image = data.draw(st.sampled_from(self.live()))
        assert image.location is not None
        target = OTHER if image.location.bucket != OTHER else TEMP
        moved = image.location.model_copy(update={"bucket": target})
        self.world.repository.replace_image(image, image.model_copy(update={"location": moved}))

    @precondition(lambda self: self.live())
    @rule(data=st.data(), stale=st.booleans())
    def soft_delete(self, data: st.DataObject, stale: bool) -> None:
        image = data.draw(st.sampled_from(self.live()))
        self.world.repository.replace_image(image, soft_deleted(image, NOW, self.world.settings))
        if stale:  # the same delete again, from the same read: refused, counted once
            try:
                self.world.repository.replace_image(
                    image, soft_deleted(image, NOW, self.world.settings)
                )
            except Conflict:
                pass
            else:
                raise AssertionError("a stale soft delete was accepted")

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def remove_record(self, data: st.DataObject) -> None:
        image = self.world.repository.find_image(data.draw(st.sampled_from(sorted(self.ids))))
        if image is not None:
            self.world.repository.remove_image(image)

    @rule(percent=st.sampled_from([0.0001, 50.0]))
    def age_based_cleanup(self, percent: float) -> None:
        capacity = CapacityService(
            self.world.settings,
            self.world.repository,
            self.world.service().backends,
            clock=lambda: NOW + timedelta(days=40),  # everything is old enough
        )
        capacity.cleanup(TierName.TEMP, TEMP, dry_run=False, threshold_percent=percent)

    @invariant()
    def counters_equal_the_live_records(self) -> None:
        live = self.live()
        for bucket in self.world.repository.list_buckets("temp"):
            mine = [i for i in live if i.location is not None and i.location.bucket == bucket.name]
            assert (bucket.used_bytes, bucket.object_count) == (
                sum(i.stored_size for i in mine),
                len(mine),
            ), bucket.name


Histories.TestCase.settings = hypothesis_settings(
    max_examples=100, stateful_step_count=30, deadline=None
)
TestCounterHistories = Histories.TestCase
