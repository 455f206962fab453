"""shelflife.domain.budget: a clock cut to a caller's deadline."""

from __future__ import annotations

import pytest

from shelflife.domain.budget import budgeted, parse_seconds
from shelflife.domain.errors import InvalidArgument


def test_without_a_budget_the_invocation_clock_is_used() -> None:
    def clock() -> int:
        return 123_000

    assert budgeted(clock, None, margin_ms=60_000) is clock


def test_a_budget_leaves_the_margin_after_its_seconds() -> None:
    left = budgeted(lambda: 900_000, 20, margin_ms=60_000)
    assert 79_000 < left() <= 80_000


def test_the_invocation_ending_first_wins() -> None:
    assert budgeted(lambda: 5_000, 20, margin_ms=60_000)() == 5_000


@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True])
def test_a_budget_must_be_whole_seconds(value: object) -> None:
    with pytest.raises(InvalidArgument, match="max_seconds must be"):
        parse_seconds(value)
