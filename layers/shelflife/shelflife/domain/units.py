"""Sizes and amounts as people read them: one way for the dashboard, the CLI and the
demo, so the same number never reads two ways."""

from __future__ import annotations


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def usd(amount: float) -> str:
    """Dollars as people read them; small stores cost fractions of a cent."""
    return f"${amount:,.2f}" if abs(amount) >= 0.01 or amount == 0 else f"${amount:.6f}"
