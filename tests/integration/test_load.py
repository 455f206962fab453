"""The load run's fast subset (the 2,000 uploads run in ``make prove``): 8 clients,
80 uploads, deletes and sweeps alongside, through the local stack. In a process of its
own: the run moves the stack's clock."""

from __future__ import annotations

from tests.support.commands import run_module


def test_uploads_from_eight_clients_are_placed_once_and_add_up() -> None:
    done = run_module("shelflife_tools.prove.load", "--uploads", "80")

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("80 uploads, 8 deleted by their owners")
    # A day on the clock, a sweep and a capacity check for each 25 uploads ingested.
    assert lines[1] == (
        "admin alongside: {'hours_advanced': 72, 'POST /lifecycle/run': 3, 'POST /capacity/run': 3}"
    )
    assert "0 problems" in lines[-1]
    assert any(line.startswith("slowest request: ") for line in lines)


def test_the_run_refuses_options_that_make_no_sense() -> None:
    done = run_module("shelflife_tools.prove.load", "--uploads", "3", "--clients", "8", timeout=60)

    assert done.returncode == 2
    assert "--uploads must be at least --clients" in done.stderr
