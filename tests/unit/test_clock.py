"""shelflife.domain.clock: one time for every service, which the local stack may move."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shelflife.domain import clock
from shelflife.domain.clock import utc_now


@pytest.fixture(autouse=True)
def wall_clock() -> Iterator[None]:
    yield
    clock.set_clock()


def test_set_and_shifted_the_services_see_the_same_time() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    clock.set_clock(start)
    assert timedelta(0) <= utc_now() - start < timedelta(seconds=5)
    clock.set_clock(offset=timedelta(days=90))
    assert timedelta(days=90) <= utc_now() - start < timedelta(days=90, seconds=5)
    clock.set_clock()
    assert abs(utc_now() - datetime.now(UTC)) < timedelta(seconds=1)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        clock.set_clock(datetime(2030, 1, 1))
