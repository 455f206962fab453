"""What the store learns from its own workload to place images by price (issue 21,
part 3): how old photos are when their owners publish them, and how often a published
photo is asked for.

The API counts each publish by the photo's age then (``publish_age_counter``, a daily
counter per age bound). A draft left unpublished long after nearly every photo of the
deployment has been published is, with that measured confidence, a draft that stays
one: keeping it in HOT until ``hot_idle_days`` pays HOT's price for nothing, so the
lifecycle archives it after the measured age instead (``archive_idle_days``), never
later than the setting. Until enough publishes are measured, the setting holds.

The API also counts the days a published photo's URL is asked for
(``published_views``) and the published bytes. Each such view-day is at least one
download; when HOT's egress on that many downloads of the mean published photo costs
more than moving it to the serving buckets (``Settings.serve``, R2: no egress fee),
published photos are moved there at publishing (``serve_published``).

``tuned`` applies both: the settings the lifecycle and the API act on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from shelflife.domain.costs import CostModel
from shelflife.domain.records import PUBLISH_AGE_BOUNDS, PUBLISH_AGE_COUNTERS, DailyCounts
from shelflife.domain.settings import Settings

if TYPE_CHECKING:
    from shelflife.domain.repository import Repository

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


def serve_published(days: Iterable[DailyCounts], settings: Settings) -> Literal["always", "never"]:
    """Whether published photos move to the serving buckets: the setting when it is
    "always" or "never"; with "auto", when the measured view-days per published photo
    (at least ``learned_archive_min_publishes`` publishes in the days given) make the
    move of the mean published photo cheaper than serving it from HOT
    (``CostModel.serve``)."""
    if settings.serve is None or settings.serve_published == "never":
        return "never"
    if settings.serve_published == "always":
        return "always"
    totals = {"published": 0, "published_views": 0, "published_bytes": 0}
    for day in days:
        for name in totals:
            totals[name] += day.counts.get(name, 0)
    published = totals["published"]
    if published < settings.learned_archive_min_publishes or not totals["published_bytes"]:
        return "never"
    estimate = CostModel(settings).serve(
        totals["published_bytes"] // published,
        totals["published_views"] / published,
        settings.published_retention_days,
    )
    return "always" if estimate.worth_it and estimate.saving > 0 else "never"


def tuned(settings: Settings, days: Iterable[DailyCounts]) -> Settings:
    """``settings`` with what the daily counters of ``days`` (the last
    ``learned_archive_window_days``) teach: HOT's idle days and whether published
    photos are served from the serving buckets."""
    days = list(days)
    return settings.model_copy(
        update={
            "hot_idle_days": archive_idle_days(days, settings),
            "serve_published": serve_published(days, settings),
        }
    )


def tuned_settings(settings: Settings, repository: Repository, now: datetime) -> Settings:
    """``tuned`` on the daily counters of the window before ``now`` (one query; none
    when nothing is learned)."""
    if not settings.learned_archive and settings.serve_published != "auto":
        return tuned(settings, [])
    since = now - timedelta(days=settings.learned_archive_window_days)
    return tuned(settings, repository.daily_counts(since.date()))


class DailyTuned:
    """``tuned_settings`` read once a day per container: what a request-driven service
    (the API's, ingest's) schedules with, so the schedule it stores is the one the
    sweep would store."""

    def __init__(
        self, configured: Settings, repository: Repository, clock: Callable[[], datetime]
    ) -> None:
        self.configured = configured
        self.repository = repository
        self.clock = clock
        self._tuned: tuple[date, Settings] | None = None

    @property
    def settings(self) -> Settings:
        today = self.clock().date()
        if self._tuned is None or self._tuned[0] != today:
            self._tuned = (today, tuned_settings(self.configured, self.repository, self.clock()))
        return self._tuned[1]
