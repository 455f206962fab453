"""What the ``shelflife`` command and the demo print and wait for: tables, progress bars,
the stats, and a foreground run that Ctrl-C or SIGTERM ends."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from shelflife.domain.units import human_bytes, usd


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], out: TextIO) -> None:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def bar(done: int, total: int, label: str, out: TextIO) -> None:
    width = 28
    filled = round(width * done / total) if total else width
    out.write(f"\r[{'#' * filled}{'-' * (width - filled)}] {done}/{total} {label[:50]:50}")
    if done >= total:
        out.write("\n")
    out.flush()


def print_stats(stats: dict[str, Any], out: TextIO) -> None:
    """``GET /stats`` as a table and a line of totals."""
    table(
        [
            [t["tier"], t["backend"], t["photos"], human_bytes(t["bytes"]), usd(t["monthly_cost"])]
            for t in stats["tiers"]
        ],
        ["tier", "backend", "photos", "stored", "per month"],
        out,
    )
    out.write(
        f"\n{stats['photos']} photos, {human_bytes(stats['bytes'])}: "
        f"{usd(stats['monthly_cost'])} a month ({usd(stats['all_hot_monthly_cost'])} all in "
        f"HOT, {usd(stats['monthly_savings'])} saved)\n"
    )


def wait_for_interrupt() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
