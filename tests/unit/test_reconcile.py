"""The reconciler on a seeded drift scenario: orphans young and old (one adoptable),
missing objects, size and checksum mismatches, wrong counters, and 2,500+ objects in one
bucket so every listing and index read pages. The report names each drift exactly; fix
mode repairs it; once the grace period has passed, a run reports nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from shelflife.adapters.backends import MemoryBackend
from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.domain.errors import Conflict, InvalidArgument
from shelflife.domain.policy import soft_deleted
from shelflife.domain.records import ImageRecord, ImageState, RunKind, RunStatus
from shelflife.domain.settings import BackendName, TierName
from shelflife.domain.storage import sha256_hex
from shelflife.reconcile_command import main
from shelflife.services.reconcile import Progress, ReconcileReport, ReconcileService
from tests.conftest import REGION
from tests.support.commands import run_module
from tests.support.crashes import InjectedCrash, Steps
from tests.support.lifecycle import BUCKETS, NOW, TEMP, World, lifecycle_settings, real_stores
from tests.support.template import create_table_from_template

HOT, COLD = BUCKETS[TierName.HOT], BUCKETS[TierName.COLD]


def clocked_world(**kw: Any) -> World:
    """A world whose store stamps objects with the world's clock, so a test can write
    objects in the past."""
    holder: list[World] = []
    store = MemoryBackend(clock=lambda: holder[0].now.timestamp() if holder else NOW.timestamp())
    world = World(stores={name: store for name in BackendName}, **kw)
    holder.append(world)
    return world


def service(world: World) -> ReconcileService:
    return ReconcileService(
        world.settings, world.repository, world.backends(), clock=lambda: world.now
    )


@contextlib.contextmanager
def at(world: World, age: timedelta) -> Iterator[None]:
    """Write objects ``age`` before now."""
    now, world.now = world.now, world.now - age
    try:
        yield
    finally:
        world.now = now


def put(world: World, bucket: str, key: str, data: bytes, *, age: timedelta, **meta: str) -> None:
    with at(world, age):
        world.memory.put(bucket, key, data, content_type="image/jpeg", metadata=meta)


def rewrite(world: World, image: ImageRecord, **info: Any) -> None:
    """Change what the store says of an object behind its back (size, checksum)."""
    assert image.location is not None
    stored = world.memory._get(image.location.bucket, image.location.key)
    objects = world.memory._buckets[image.location.bucket].objects
    objects[image.location.key] = dataclasses.replace(
        stored, info=dataclasses.replace(stored.info, **info)
    )


@dataclasses.dataclass
class Seeded:
    world: World
    orphans_old: set[str]
    orphans_young: set[str]
    adoptable: str
    missing: set[str]
    size_mismatch: str
    checksum_mismatch: str


def seed(images: int = 2_520) -> Seeded:
    world = clocked_world()
    age = timedelta(days=3)
    with at(world, age):
        for _ in range(images):
            world.upload(TierName.TEMP)
        hot = [world.upload(TierName.HOT) for _ in range(20)]
        cold = [world.upload(TierName.COLD) for _ in range(20)]
    # Orphans past the grace period: no record at all (one of them valid and adoptable),
    # a soft-deleted record cleanup never caught up with, and something that is no image.
    data = b"adopt me" * 40
    adoptable = f"images/lost-and-found/{sha256_hex(data)}.jpg"
    put(world, HOT, adoptable, data, age=age, owner="carol", **{"image-id": "lost-and-found"})
    put(world, TEMP, "tmp/leftover.bin", b"junk", age=age)
    put(world, COLD, f"images/gone/{'c' * 64}.jpg", b"old", age=age)
    deleted = world.change(hot[0], lambda i, now, s: soft_deleted(i, now, s))
    assert deleted.location is not None
    # Young orphans: written an hour ago, maybe by a move still in flight.
    put(world, TEMP, f"images/young-1/{'d' * 64}.jpg", b"young", age=timedelta(hours=1))
    put(world, HOT, f"images/young-2/{'e' * 64}.jpg", b"young", age=timedelta(hours=1))
    # Records whose objects vanished.
    missing = [hot[1], cold[1]]
    for image in missing:
        assert image.location is not None
        world.memory.delete(image.location.bucket, image.location.key)
    # Objects that differ from their records.
    rewrite(world, cold[2], size=cold[2].stored_size + 1)
    rewrite(world, hot[2], sha256="f" * 64)
    # Counters that drifted.
    world.repository.set_bucket_counters("temp", TEMP, used_bytes=1, object_count=1)
    world.repository.set_bucket_counters("cold", COLD, used_bytes=0, object_count=0)
    return Seeded(
        world=world,
        orphans_old={
            adoptable,
            "tmp/leftover.bin",
            f"images/gone/{'c' * 64}.jpg",
            deleted.location.key,
        },
        orphans_young={f"images/young-1/{'d' * 64}.jpg", f"images/young-2/{'e' * 64}.jpg"},
        adoptable=adoptable,
        missing={image.id for image in missing},
        size_mismatch=cold[2].id,
        checksum_mismatch=hot[2].id,
    )


def listed(report: ReconcileReport, kind: str, field: str = "key") -> set[str]:
    return {item[field] for item in report.drift.get(kind, [])}


@pytest.fixture(scope="module")
def seeded() -> Seeded:
    return seed()


def test_a_dry_run_reports_every_drift_exactly_and_changes_nothing(seeded: Seeded) -> None:
    world = seeded.world
    before = (world.objects(), world.repository.list_buckets())
    updates: list[Progress] = []

    report = service(world).run(progress=updates.append)

    c = report.counts
    assert report.complete
    assert listed(report, "orphaned") == seeded.orphans_old | seeded.orphans_young
    assert c["orphaned_young"] == 2
    assert listed(report, "missing", "image_id") == seeded.missing
    assert listed(report, "size_mismatch", "image_id") == {seeded.size_mismatch}
    assert listed(report, "checksum_mismatch", "image_id") == {seeded.checksum_mismatch}
    assert {(i["tier"], i["bucket"]) for i in report.drift["counters"]} == {
        ("temp", TEMP),
        ("cold", COLD),
    }
    assert c["objects"] == len(before[0])
    assert report.buckets[f"temp/{TEMP}"]["objects"] == 2_520 + 2
    assert report.types["temp/jpg"]["objects"] == 2_520 + 1
    assert report.types["temp/bin"] == {"objects": 1, "bytes": 4}
    # TEMP's 2,522 objects and records come in pages of 1,000.
    temp_pages = [u for u in updates if u.bucket == f"temp/{TEMP}" and u.phase == "objects"]
    assert len(temp_pages) >= 2
    assert updates[-1].fraction == 1.0
    assert any("--fix deletes them" in line for line in report.recommendations())
    assert (world.objects(), world.repository.list_buckets()) == before


def test_fix_repairs_and_a_run_after_the_grace_period_reports_nothing() -> None:
    seeded = seed(images=1_100)
    world = seeded.world

    fixed = service(world).run(fix=True, adopt=True)

    c = fixed.counts
    assert (c["adopted"], c["deleted"]) == (1, 3)
    assert c["marked_lost"] == 4  # two missing objects, two that differ from their records
    assert c["counters_corrected"] == 2
    assert {i["action"] for i in fixed.drift["orphaned"] if i["key"] in seeded.orphans_young} == {
        "kept: younger than the grace period"
    }
    adopted = world.repository.get_image("lost-and-found")
    assert (adopted.owner, adopted.state, adopted.location.bucket) == (  # type: ignore[union-attr]
        "carol",
        ImageState.ACTIVE,
        HOT,
    )
    for image_id in [*seeded.missing, seeded.size_mismatch, seeded.checksum_mismatch]:
        assert world.repository.get_image(image_id).state is ImageState.LOST

    world.now += timedelta(hours=48)
    service(world).run(fix=True)
    again = service(world).run()

    assert again.drift_found == 0, again.drift
    assert again.recommendations() == ["no drift: the buckets and the table agree"]
    world.assert_consistent()


def test_an_orphan_that_gains_a_record_before_its_deletion_is_kept() -> None:
    world = clocked_world()
    data = b"racing" * 20
    key = f"images/late/{sha256_hex(data)}.jpg"
    put(world, TEMP, key, data, age=timedelta(days=3))
    with at(world, timedelta(days=3)):
        world.upload(TierName.TEMP)
    record = world.upload(TierName.TEMP)
    late = record.model_copy(
        update={
            "id": "late",
            "location": record.location.model_copy(update={"key": key}),  # type: ignore[union-attr]
            "version": None,
        }
    )
    steps = Steps(frozenset({"find_image"}))
    # The record arrives after the listing, right before the re-check.
    steps.before = (1, lambda: world.repository.add_image(late))
    reconciler = ReconcileService(
        world.settings,
        steps.wrap(world.repository, "table"),
        world.backends(),
        clock=lambda: world.now,
    )

    report = reconciler.run(fix=True)

    (item,) = [i for i in report.drift["orphaned"] if i["key"] == key]
    assert item["action"] == "kept: referenced now"
    assert world.memory.exists(TEMP, key)


def test_a_run_out_of_time_resumes_where_it_stopped_with_the_same_result(
    seeded: Seeded,
) -> None:
    world = seeded.world
    whole = service(world).run()
    calls = iter(range(1_000))

    def remaining() -> int:
        return 120_000 if next(calls) < 3 else 1_000

    stopped = service(world).run(remaining_ms=remaining)
    run = world.repository.find_run(RunKind.RECONCILE, stopped.started_at, stopped.run_id)

    assert not stopped.complete
    assert run is not None
    assert (run.status, bool(run.cursor)) == (RunStatus.RUNNING, True)
    assert any("--resume" in line for line in stopped.recommendations())
    resumed = service(world).resume(stopped.run_id)
    assert resumed.complete
    assert resumed.counts == whole.counts
    assert resumed.drift == whole.drift
    with pytest.raises(Conflict):
        service(world).resume(stopped.run_id)
    with pytest.raises(InvalidArgument):
        service(world).resume("yesterday")


def crashing(world: World, steps: Steps) -> ReconcileService:
    return ReconcileService(
        world.settings,
        steps.wrap(world.repository, "table"),
        world.backends(steps),
        clock=lambda: world.now,
    )


def fix_steps() -> list[str]:
    """The writes of one fix run over a small seeded scenario, in order."""
    seeded, steps = seed(images=5), Steps()
    crashing(seeded.world, steps).run(fix=True, adopt=True)
    return steps.log


FIX_STEPS = fix_steps()


@pytest.mark.parametrize("step", range(1, len(FIX_STEPS) + 1))
def test_a_crash_after_any_step_of_a_fix_is_repaired_by_the_next_run(step: int) -> None:
    seeded = seed(images=5)
    world = seeded.world
    steps = Steps()
    steps.crash_after = step
    with pytest.raises(InjectedCrash):
        crashing(world, steps).run(fix=True, adopt=True)

    service(world).run(fix=True, adopt=True)
    world.now += timedelta(hours=48)
    service(world).run(fix=True)

    assert service(world).run().drift_found == 0
    assert world.repository.get_image("lost-and-found").state is ImageState.ACTIVE
    world.assert_consistent()


def test_options_are_checked() -> None:
    reconciler = service(World())
    with pytest.raises(InvalidArgument, match="adopting"):
        reconciler.run(adopt=True)
    with pytest.raises(InvalidArgument, match="grace_hours"):
        reconciler.run(grace_hours=0)
    with pytest.raises(InvalidArgument, match="max_deletes"):
        reconciler.run(max_deletes=-1)


def test_the_deletion_cap_holds_and_says_so() -> None:
    world = clocked_world()
    for n in range(5):
        put(world, TEMP, f"images/o-{n}/{'a' * 64}.jpg", b"x", age=timedelta(days=3))

    report = service(world).run(fix=True, max_deletes=2)

    assert report.counts["deleted"] == 2
    assert report.counts["deletion_cap_reached"] == 3
    assert len(world.objects()) == 3
    assert any("cap of 2 deletions" in line for line in report.recommendations())


def test_the_command_line_reports_fixes_and_shows_progress(
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = clocked_world()
    with at(world, timedelta(days=3)):
        world.upload(TierName.TEMP)
    put(world, TEMP, "images/stray/x.jpg", b"x", age=timedelta(days=3))

    assert main(["--json"], service=service(world)) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["counts"]["orphaned"] == 1
    assert "100%" in err
    assert "bucket 3/3" in err

    assert main(["--fix", "--yes"], service=service(world)) == 0
    out, _ = capsys.readouterr()
    assert "fixed: 1 deleted" in out
    assert main([], service=service(world)) == 0
    assert "no drift" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--adopt"], service=service(world))


# ---- every backend, the real table -----------------------------------------------


def test_every_backend_and_the_dynamodb_table_reconcile_alike() -> None:
    with mock_aws():
        create_table_from_template("shelflife-test")
        stores = real_stores()
        settings = lifecycle_settings(
            temp={"backend": "s3"}, hot={"backend": "r2"}, cold={"backend": "b2"}
        )
        world = World(
            settings=settings,
            stores=stores,
            repository=DynamoRepository("shelflife-test", region=REGION),  # type: ignore[arg-type]
        )
        kept = {tier: world.upload(tier) for tier in TierName}
        gone = {tier: world.upload(tier) for tier in TierName}
        for tier, image in gone.items():
            assert image.location is not None
            world.store(tier).delete(image.location.bucket, image.location.key)
            world.store(tier).put(
                BUCKETS[tier], f"images/stray-{tier}/x.jpg", b"x", content_type="image/jpeg"
            )
        # Every object is older than the grace period by the service's clock (moto and
        # the simulator stamp objects with the real time).
        world.now = datetime.now(UTC) + timedelta(hours=49)
        reconciler = ReconcileService(
            settings, world.repository, world.backends(), clock=lambda: world.now
        )

        report = reconciler.run(fix=True)

        assert report.counts["orphaned"] == report.counts["deleted"] == 3
        assert listed(report, "missing", "image_id") == {image.id for image in gone.values()}
        assert world.objects() == {
            (image.location.backend.value, image.location.bucket, image.location.key)  # type: ignore[union-attr]
            for image in kept.values()
        }
        assert reconciler.run().drift_found == 0


def test_the_module_runs_as_a_command() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SHELFLIFE_")}

    done = run_module("shelflife.reconcile_command", "--json", env=environment, timeout=60)

    # No SHELFLIFE_* environment: a clear configuration error naming the variable.
    assert done.returncode == 2
    assert "SHELFLIFE_TABLE_NAME" in done.stderr
