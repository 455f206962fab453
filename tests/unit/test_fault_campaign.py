"""The fault campaign's fast subset (the whole runs in ``make prove``), and proof that
its checks catch what they are there to catch.

Every step of every flow gets one fault here, the kinds taking turns down the steps
(crash, throttled, 5xx, timeout, crash, ...), so each step and each kind of fault is
covered in a quarter of the campaign's time."""

from __future__ import annotations

import io
from collections import Counter
from datetime import timedelta

import pytest

from shelflife.domain.settings import TierName
from tests.prove import faults
from tests.prove.faults import FLOWS, Deployment, Flow, Run
from tests.support.crashes import Fault, Steps
from tests.support.lifecycle import BUCKETS


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_every_step_survives_a_fault(name: str) -> None:
    flow = FLOWS[name]
    log, reference = faults.clean_steps(flow)
    assert reference.problems == []
    assert log, "the flow made no call to inject a fault into"
    kinds: list[Fault] = [fault for fault in Fault if fault is not Fault.REUPLOAD]
    again = None
    if faults.repeats_an_upload(flow):
        kinds.append(Fault.REUPLOAD)
        again = faults.run(flow, None, again_after=True)
        assert again.problems == []

    failures = []
    for step in range(1, len(log) + 1):
        fault = kinds[(step - 1) % len(kinds)]
        result = faults.run(flow, (step, fault))
        expected = again if fault is Fault.REUPLOAD else reference
        assert expected is not None
        if result.fingerprint != expected.fingerprint:
            result.problems.append("end state differs from the run without a fault")
        failures += [f"step {step} ({log[step - 1]}) {fault}: {p}" for p in result.problems]

    assert failures == []


def _careless_move(world: Deployment) -> Run:
    """A mover that deletes the source itself, first: what invariant 2 forbids."""
    image = world.upload(TierName.TEMP, age=timedelta(days=3))
    assert image.location is not None
    place = image.location

    def act(steps: Steps | None) -> None:
        store = world.given("lifecycle", steps).get(place.backend.value)
        store.delete(place.bucket, place.key)
        world.lifecycle(steps).run()

    return Run(
        world,
        act=act,
        run_on=lambda: world.lifecycle().run(),
        expect=lambda: faults._live_in(world, image.id, TierName.HOT),
        target=image.id,
    )


def test_the_campaign_catches_a_mover_that_loses_the_image() -> None:
    flow = Flow("careless-move", {"temp": "s3", "hot": "r2"}, _careless_move)

    result = faults.run(flow, (1, Fault.CRASH))

    found = " | ".join(result.problems)
    assert "lifecycle deleted" in found  # invariant 2
    assert "lost:" in found or "missing:" in found


def test_the_campaign_catches_counters_left_wrong_and_says_the_reconciler_fixed_them() -> None:
    def drift(world: Deployment) -> Run:
        bucket = BUCKETS[TierName.HOT]

        def act(steps: Steps | None) -> None:
            world.table(steps).set_bucket_counters("hot", bucket, used_bytes=7, object_count=7)

        return Run(world, act=act, run_on=lambda: None, expect=lambda: [])

    result = faults.run(Flow("drift", {"hot": "s3"}, drift), None)

    assert result.problems == []
    assert result.repaired["counters"] == 1


def test_the_matrix_marks_each_cell_and_the_summary_counts_failures() -> None:
    out = io.StringIO()
    cells = faults.campaign([FLOWS["delete-by-owner"]], [Fault.CRASH], out=out)
    cells.append(faults.Cell("delete-by-owner", 9, "x", Fault.CRASH, ["lost: img-9"], Counter()))

    text = faults.summary(cells, 1.0)

    assert "delete-by-owner" in out.getvalue()
    assert "table.replace_image" in out.getvalue()
    assert f"{len(cells) - 1} passed, 1 failed" in text
    assert "objects lost 1" in text
