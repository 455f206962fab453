"""The time every service goes by (``now()``).

In Lambda it is the wall clock. The local stack may set it or shift it (``set_clock``),
so a demo or a test can live through the lifecycle's days and months in seconds: every
service reads the time through here (``utc_now``), so they all see
the same moment.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

_lock = threading.Lock()
_offset = timedelta(0)


def now() -> datetime:
    with _lock:
        return datetime.now(UTC) + _offset


def utc_now() -> datetime:
    """The services' default clock: ``now()`` looked up at each call, so a clock set
    after a service was built is still the one it reads."""
    return now()


def set_clock(at: datetime | None = None, *, offset: timedelta | None = None) -> datetime:
    """Make ``now()`` read ``at`` from here on (the clock keeps running from there), or
    shift it by ``offset``; with neither, back to the wall clock. Returns the new now."""
    global _offset
    if at is not None and at.tzinfo is None:
        raise ValueError("the clock's time must carry a time zone (UTC)")
    with _lock:
        if at is not None:
            _offset = at - datetime.now(UTC)
        elif offset is not None:
            _offset += offset
        else:
            _offset = timedelta(0)
    return now()
