"""``shelflife stats --watch SECONDS`` (issue 22, part 4): the terminal's live view of
``GET /stats``, refreshed until Ctrl-C, which ends it cleanly."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shelflife_tools.cli import UsageError, watch_stats
from shelflife_tools.client import ApiClient, ApiError, Unreachable

START = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class FakeApi:
    """Answers ``GET /stats`` from a script of answers (an exception is raised)."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers: Iterator[Any] = iter(answers)
        self.asked = 0

    def get(self, path: str, **query: Any) -> Any:
        assert (path, query) == ("/stats", {})
        self.asked += 1
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def stats(photos: int) -> dict[str, Any]:
    tier = {"tier": "temp", "backend": "s3", "photos": photos, "bytes": 1000 * photos}
    return {
        "tiers": [{**tier, "monthly_cost": 0.001 * photos}],
        "photos": photos,
        "bytes": 1000 * photos,
        "monthly_cost": 0.001 * photos,
        "monthly_savings": 0.0,
        "all_hot_monthly_cost": 0.001 * photos,
        "stack_fixed_monthly_cost": 0.002,
        "baseline": "all in HOT",
        "prices_checked": "2026-12-04",
    }


def watch(
    api: FakeApi, out: io.StringIO, refreshes: int, **options: Any
) -> tuple[int, list[float]]:
    """Runs the watch until the ``refreshes``-th sleep, where a Ctrl-C arrives."""
    slept: list[float] = []
    clock = iter(START + timedelta(seconds=5 * n) for n in range(100))

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == refreshes:
            raise KeyboardInterrupt

    client: ApiClient = api  # type: ignore[assignment]
    code = watch_stats(client, 5, out, sleep=sleep, now=lambda: next(clock), **options)
    return code, slept


def test_it_refreshes_until_ctrl_c_and_ends_cleanly() -> None:
    api, out = FakeApi([stats(1), stats(2), stats(3)]), io.StringIO()

    code, slept = watch(api, out, refreshes=3)

    assert (code, api.asked, slept) == (0, 3, [5, 5, 5])
    text = out.getvalue()
    assert "\x1b[" not in text  # not a terminal: each refresh follows the last
    stamps = [line for line in text.splitlines() if "(Ctrl-C ends)" in line]
    assert stamps == [f"2026-12-05 12:00:{s:02d} UTC, every 5 s (Ctrl-C ends)" for s in (0, 5, 10)]


def test_on_a_terminal_the_table_is_redrawn_in_place() -> None:
    api, out = FakeApi([stats(1), stats(2)]), Terminal()

    watch(api, out, refreshes=2)

    frames = out.getvalue().split("\x1b[H\x1b[2J")
    assert len(frames) == 3
    assert frames[0] == ""
    assert all("(Ctrl-C ends)" in frame for frame in frames[1:])


def test_a_refresh_that_fails_is_said_and_the_next_tries_again() -> None:
    refused = ApiError(403, "forbidden", "admins only")
    api = FakeApi([stats(1), Unreachable("connection refused"), refused, stats(4)])
    out = io.StringIO()

    code, _ = watch(api, out, refreshes=4, as_json=True)

    lines = out.getvalue().splitlines()
    assert code == 0
    assert json.loads(lines[0])["stats"]["photos"] == 1
    assert lines[1] == "2026-12-05 12:00:05 UTC  not updated: connection refused"
    assert lines[2].endswith("not updated: forbidden: admins only (HTTP 403)")
    assert json.loads(lines[3]) == {"at": "2026-12-05 12:00:15 UTC", "stats": stats(4)}


@pytest.mark.parametrize("seconds", [0, 0.5, 86_401, float("nan"), float("inf")])
def test_an_interval_out_of_range_is_a_usage_error(seconds: float) -> None:
    client: ApiClient = FakeApi([])  # type: ignore[assignment]
    with pytest.raises(UsageError, match="--watch"):
        watch_stats(client, seconds, io.StringIO())
