"""What the store learns from its own workload to place images by price (issue 21,
part 3): how old photos are when their owners publish them.

The API counts each publish by the photo's age then (``publish_age_counter``, a daily
counter per age bound). A draft left unpublished long after nearly every photo of the
deployment has been published is, with that measured confidence, a draft that stays
one: keeping it in HOT until ``hot_idle_days`` pays HOT's price for nothing, so the
lifecycle archives it after the measured age instead (``archive_idle_days``), never
later than the setting. Until enough publishes are measured, the setting holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta

from shelflife.domain.records import PUBLISH_AGE_BOUNDS, PUBLISH_AGE_COUNTERS, DailyCounts
from shelflife.domain.settings import Settings

OLDER_COUNTER = PUBLISH_AGE_COUNTERS[-1]


def publish_age_counter(age: timedelta) -> str:
    """The daily counter a publish of a photo ``age`` old adds to."""
    days = age.total_seconds() / 86400
    for bound in PUBLISH_AGE_BOUNDS:
        if days <= bound:
            return f"published_within_{bound}d"
    return OLDER_COUNTER


def publish_age_bound(days: Iterable[DailyCounts], share: float) -> tuple[int | None, int]:
    """The smallest age bound (days) within which ``share`` of the publishes counted on
    ``days`` happened (None: not within 90 days, or nothing counted), and how many
    publishes were counted."""
    totals = dict.fromkeys(PUBLISH_AGE_COUNTERS, 0)
    for day in days:
        for name in PUBLISH_AGE_COUNTERS:
            totals[name] += day.counts.get(name, 0)
    measured = sum(totals.values())
    needed = math.ceil(share * measured)
    seen = 0
    for bound in PUBLISH_AGE_BOUNDS:
        seen += totals[f"published_within_{bound}d"]
        if measured and seen >= needed:
            return bound, measured
    return None, measured


def archive_idle_days(days: Iterable[DailyCounts], settings: Settings) -> int:
    """Days without access after which HOT is archived: the smallest age bound within
    which ``learned_archive_share`` of the measured publishes happened (the days
    given: the last ``learned_archive_window_days``), when at least
    ``learned_archive_min_publishes`` were measured; else, or when larger,
    ``hot_idle_days``."""
    configured = settings.hot_idle_days
    if not settings.learned_archive:
        return configured
    bound, measured = publish_age_bound(days, settings.learned_archive_share)
    if bound is None or measured < settings.learned_archive_min_publishes:
        return configured
    return min(bound, configured)
