"""Time budgets for work that stops and resumes (the lifecycle sweep, reconciliation).

Both stop when the clock they are given says less than their margin is left. A caller
with its own deadline (the API, which API Gateway gives 30 seconds) hands them a clock
that runs out ``seconds`` from now, margin included, or with the invocation, whichever
comes first.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shelflife.domain.errors import InvalidArgument


def budgeted(
    remaining_ms: Callable[[], int], seconds: int | None, *, margin_ms: int
) -> Callable[[], int]:
    """``remaining_ms`` (the Lambda context's clock), cut to ``seconds`` of work."""
    if seconds is None:
        return remaining_ms
    deadline = time.monotonic() + seconds + margin_ms / 1000

    def left() -> int:
        return min(int((deadline - time.monotonic()) * 1000), remaining_ms())

    return left


def parse_seconds(value: object, name: str = "max_seconds") -> int | None:
    """A budget from an event: None, or a whole number of seconds >= 1."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgument(f"{name} must be a whole number >= 1, got {value!r}")
    return value
