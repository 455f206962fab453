"""The lifecycle sweep: move and delete what the policy (``shelflife.domain.policy``) says is
due.

The sweep reads only due records, shard by shard through the sparse due index, a page
at a time, and stops while the Lambda still has ``lifecycle_time_margin_seconds`` left;
the run record keeps the cursor and a continuation picks it up, so one run handles any
number of due records.

A reschedule (``run(reschedule=True)``) reads the same index to its end instead of up to
now and stores each record's schedule as the current policy settings compute it: a
policy change (say HOT's 90 idle days made 30) then reaches the images scheduled under
the old one, not only at their old dates. It writes only the records whose schedule
changes, moves and deletes nothing, and stops and continues like a sweep.

A move is four steps, each safe to repeat:

1. claim the destination on the record (``move_to``: the least-full bucket of the
   destination tier), a conditional write;
2. copy the object there: server-side within one backend, streamed across backends
   (the destination refuses bytes that do not hash to the SHA-256 recorded at ingest);
3. verify what landed (size and SHA-256, read back from the destination);
4. flip the record to the destination and move both buckets' counters, in one
   transaction conditional on the record being as it was read.

The source is not deleted here: the table's stream shows the cleanup function that the
record moved away from it (``records.released_objects``). A sweep that crashed after 1
or 2 finds the claim and resumes it to the same place; a claim the policy no longer
wants (the image was accessed or published since) is rolled back, and the stream then
releases the copy it may have made.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shelflife.domain.audit import acting, acts_as
from shelflife.domain.budget import budgeted
from shelflife.domain.clock import utc_now
from shelflife.domain.costs import CostModel
from shelflife.domain.errors import (
    BucketFull,
    BucketNotFound,
    ChecksumMismatch,
    Conflict,
    InvalidArgument,
    NoBucketAvailable,
    ObjectNotFound,
    RecordNotFound,
    StorageError,
)
from shelflife.domain.measurements import Measurement
from shelflife.domain.policy import (
    MOVE_DESTINATIONS,
    Schedule,
    archive_skipped,
    destination,
    lost,
    moved,
    next_step,
    promoted_in_place,
    scheduled,
    soft_deleted,
)
from shelflife.domain.ports import Queue
from shelflife.domain.records import (
    ImageAction,
    ImageRecord,
    Location,
    RunKind,
    RunRecord,
    RunStatus,
    new_run_id,
    replacement_key,
)
from shelflife.domain.repository import Repository
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.domain.storage import sha256_hex
from shelflife.domain.tuning import tuned_settings
from shelflife.services.placement import Placement

if TYPE_CHECKING:
    from shelflife.domain.storage import Backends, StorageBackend

logger = logging.getLogger(__name__)

PLACEMENT_CACHE_SECONDS = 30
# How far ahead a reschedule reads the due index: beyond any schedule the policy makes.
RESCHEDULE_HORIZON = timedelta(days=100 * 365)
# How many actions and failures a report lists (the counts are always whole): the
# handler's answer is kept in one DynamoDB item by the idempotency utility (400 KB).
REPORT_LIMIT = 200


class Outcome(StrEnum):
    PROMOTED = "promoted"
    ARCHIVED = "archived"
    RESTORED = "restored"
    SERVED = "served"  # a published photo moved to the serving buckets
    DELETED = "deleted"
    # Not due after all (accessed, published, or an index entry older than the record):
    # the fresh schedule is stored.
    RESCHEDULED = "rescheduled"
    SKIPPED = "skipped"  # the policy's move is not worth its cost: the image stays
    CHANGED = "changed"  # the record changed since it was read: the next sweep sees it
    LOST = "lost"  # the object is gone: the record is kept for a human
    FAILED = "failed"  # a provider failed or refused: the image stays due
    UNCHANGED = "unchanged"  # a reschedule found the stored schedule current


_MOVED = {
    ImageAction.PROMOTE: Outcome.PROMOTED,
    ImageAction.ARCHIVE: Outcome.ARCHIVED,
    ImageAction.RESTORE: Outcome.RESTORED,
    ImageAction.SERVE: Outcome.SERVED,
}
# The counts of every run record, also when zero.
COUNTED = ("examined", *(outcome.value for outcome in Outcome), "rolled_back")


@dataclass(frozen=True)
class ItemResult:
    image_id: str
    outcome: Outcome
    action: ImageAction | None = None
    # Where it went (or would go); why it was skipped or failed.
    detail: str = ""
    rolled_back: bool = False
    # A further step of an image this run has examined already (see ``_process``).
    followed: bool = False


@dataclass(frozen=True)
class SweepCursor:
    """Where a run continues: the shard, and the page of that shard's due records."""

    shard: int = 0
    page: str | None = None

    def encode(self) -> str:
        return json.dumps({"shard": self.shard, "page": self.page})

    @classmethod
    def decode(cls, text: str | None) -> SweepCursor:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            return cls(shard=int(raw["shard"]), page=raw["page"])
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidArgument(f"invalid sweep cursor {text!r}") from e


# Run counts published as metrics, by name.
METRICS = {
    "examined": "LifecycleExamined",
    "promoted": "ImagesPromoted",
    "archived": "ImagesArchived",
    "restored": "ImagesRestored",
    "deleted": "LifecycleImagesDeleted",
    "skipped": "LifecycleMovesSkipped",
    "failed": "LifecycleFailures",
    "lost": "ImagesLost",
}


@dataclass
class LifecycleReport:
    run_id: str
    started_at: datetime
    dry_run: bool
    # The run's counts, every invocation of it; ``added``: this invocation's alone.
    counts: Counter[str] = field(default_factory=Counter)
    added: Counter[str] = field(default_factory=Counter)
    # What was done (or, in a dry run, would be), one line per image.
    actions: list[dict[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # None when the run is complete; else where its continuation starts.
    cursor: str | None = None
    # A reschedule: every scheduled record's schedule recomputed, nothing moved.
    reschedule: bool = False
    # HOT's idle days this run archived after: the setting, or sooner when the
    # deployment's measured publish ages allow (shelflife.domain.tuning).
    archive_idle_days: int | None = None

    @property
    def complete(self) -> bool:
        return self.cursor is None

    def measurements(self) -> list[Measurement]:
        """This invocation's counts (a run continued over several invocations adds up);
        a dry run and a reschedule (which moves nothing) publish none."""
        if self.dry_run or self.reschedule:
            return []
        return [Measurement(metric, self.added[name]) for name, metric in METRICS.items()]

    def add(self, result: ItemResult) -> None:
        names = [result.outcome.value] if result.followed else ["examined", result.outcome.value]
        if result.outcome is Outcome.SKIPPED:
            names.append(f"skipped_{result.detail.split(':')[0]}")
        if result.rolled_back:
            names.append("rolled_back")
        self.counts.update(names)
        self.added.update(names)
        if result.outcome is Outcome.FAILED and len(self.failures) < REPORT_LIMIT:
            self.failures.append(f"{result.image_id}: {result.detail}")
        if result.action is not None and len(self.actions) < REPORT_LIMIT:
            self.actions.append(
                {
                    "image_id": result.image_id,
                    "action": result.action.value,
                    "outcome": result.outcome.value,
                    "detail": result.detail,
                }
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "dry_run": self.dry_run,
            "reschedule": self.reschedule,
            "archive_idle_days": self.archive_idle_days,
            "complete": self.complete,
            "counts": {name: self.counts[name] for name in sorted({*COUNTED, *self.counts})},
            "actions": self.actions,
            "failures": self.failures,
        }


def lifecycle_totals(repository: Repository, since: datetime) -> dict[str, int]:
    """The counts of every lifecycle run started since ``since``, added up (dry runs
    and reschedules left out), and how many runs."""
    totals: Counter[str] = Counter({name: 0 for name in COUNTED})
    runs = [
        run
        for run in repository.recent_runs(RunKind.LIFECYCLE, limit=1000, since=since)
        if not run.dry_run and not (run.details or {}).get("reschedule")
    ]
    for run in runs:
        totals.update(run.counts)
    totals["runs"] = len(runs)
    return dict(totals)


class LifecycleService:
    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        backends: Backends,
        *,
        clock: Callable[[], datetime] = utc_now,
        continuations: Queue | None = None,
    ) -> None:
        # The deployment's settings; ``settings`` is what a run applies: the same, with
        # HOT's idle days learned from the workload (``_tune``).
        self.configured = settings
        self.settings = settings
        self.repository = repository
        self.backends = backends
        self.clock = clock
        # Where ``sweep`` queues the rest of a run it stopped short (a queue that
        # triggers the function again); None: the next scheduled run takes it on.
        self.continuations = continuations
        self.costs = CostModel(settings)
        # One read of a tier's bucket records per half minute, not one per move.
        self.placement = Placement(
            repository, settings, backends, clock=clock, cache_seconds=PLACEMENT_CACHE_SECONDS
        )

    # ---- runs ----------------------------------------------------------------------

    @acts_as("lifecycle")
    def run(
        self,
        *,
        dry_run: bool = False,
        reschedule: bool = False,
        remaining_ms: Callable[[], int] | None = None,
    ) -> LifecycleReport:
        """Sweep every due record (with ``reschedule``: recompute every scheduled
        record's schedule), or as many as ``remaining_ms`` (the Lambda context's clock)
        leaves time for; an incomplete report's run is finished by ``resume``."""
        now = self.clock()
        report = LifecycleReport(
            run_id=new_run_id(now), started_at=now, dry_run=dry_run, reschedule=reschedule
        )
        self._tune(report)
        return self._sweep(report, SweepCursor(), remaining_ms)

    def _tune(self, report: LifecycleReport) -> None:
        """The settings this run applies: HOT's idle days and whether published photos
        are served from the serving buckets, from the daily counters of the last window
        (one query; ``shelflife.domain.tuning``)."""
        self.settings = tuned_settings(self.configured, self.repository, report.started_at)
        report.archive_idle_days = self.settings.hot_idle_days

    @acts_as("lifecycle")
    def serve(self, image_ids: list[str]) -> list[ItemResult]:
        """Do what is due now for each of ``image_ids`` (the API asks this for photos
        it just published: their move to the serving buckets). Idempotent as any
        sweep's step; ids not found or not due are reported as such and left to the
        daily sweep."""
        now = self.clock()
        self.settings = tuned_settings(self.configured, self.repository, now)
        found = self.repository.find_images(list(dict.fromkeys(image_ids)))
        results: list[ItemResult] = []
        for image_id in dict.fromkeys(image_ids):
            image = found.get(image_id)
            if image is None:
                results.append(ItemResult(image_id, Outcome.CHANGED, detail="not found"))
                continue
            results.extend(self._process(image, now, dry_run=False))
        return results

    def serve_report(self, image_ids: list[str]) -> dict[str, Any]:
        """``serve``, as the lifecycle function answers it: counts by outcome and one
        line per image."""
        results = self.serve(image_ids)
        counts = dict(Counter(result.outcome.value for result in results))
        logger.info("published photos served", extra={"counts": counts})
        return {
            "counts": counts,
            "results": [
                {"image_id": r.image_id, "outcome": r.outcome.value, "detail": r.detail}
                for r in results
            ],
        }

    @acts_as("lifecycle")
    def resume(
        self,
        run_id: str,
        started_at: datetime,
        *,
        cursor: str | None = None,
        remaining_ms: Callable[[], int] | None = None,
    ) -> LifecycleReport:
        """Continue the run ``run_id`` where it stopped, with the same notion of "due"
        (its start time). Given ``cursor`` (what the continuation was queued with), a
        run that has moved past it or is complete is reported as it is: a continuation
        delivered twice does nothing the second time."""
        run = self.repository.find_run(RunKind.LIFECYCLE, started_at, run_id)
        if run is None:
            raise RecordNotFound(f"no lifecycle run {run_id!r} started at {started_at}")
        report = LifecycleReport(
            run_id=run.id,
            started_at=run.started_at,
            dry_run=run.dry_run,
            counts=Counter(run.counts),
            cursor=run.cursor,
            reschedule=bool((run.details or {}).get("reschedule")),
        )
        stale = cursor is not None and cursor != run.cursor
        if run.status is not RunStatus.RUNNING or run.cursor is None or stale:
            return report
        self._tune(report)
        return self._sweep(report, SweepCursor.decode(run.cursor), remaining_ms)

    @acts_as("lifecycle")
    def sweep(
        self, request: Mapping[str, Any], invocation_ms: Callable[[], int]
    ) -> LifecycleReport:
        """A request read by ``shelflife.domain.requests.lifecycle_request`` (a run, or
        the continuation of one) within the invocation's time (``invocation_ms``) and
        the request's ``max_seconds``; a run stopped short queues its continuation."""
        margin_ms = self.settings.lifecycle_time_margin_seconds * 1000
        remaining_ms = budgeted(invocation_ms, request.get("max_seconds"), margin_ms=margin_ms)
        if "run_id" in request:
            started_at = datetime.fromisoformat(request["started_at"])
            report = self.resume(
                request["run_id"], started_at, cursor=request["cursor"], remaining_ms=remaining_ms
            )
        else:
            report = self.run(
                dry_run=request["dry_run"],
                reschedule=bool(request.get("reschedule")),
                remaining_ms=remaining_ms,
            )
            if self.continuations is not None and self._archive_day_shrank(report):
                # Images scheduled with the longer day would wait for it: reschedule them
                # (once per run that saw the change; the request id makes it run once).
                self.continuations.send(
                    {
                        "action": "reschedule",
                        "dry_run": False,
                        "request_id": f"learned-{report.run_id}",
                    }
                )
        if not report.complete and self.continuations is None:
            logger.warning("sweep stopped short; the next scheduled run continues it")
        elif not report.complete and self.continuations is not None:
            self.continuations.send(self.continuation(report))
        return report

    def _archive_day_shrank(self, report: LifecycleReport) -> bool:
        """Whether this sweep archives after fewer idle days than the last one did (the
        setting, before any run recorded one). Only a shorter day needs a reschedule:
        with a longer one, images scheduled earlier are archived a little early."""
        if report.dry_run or report.reschedule or report.archive_idle_days is None:
            return False
        previous = next(
            (
                int(run.details["archive_idle_days"])
                for run in self.repository.recent_runs(RunKind.LIFECYCLE, limit=20)
                if run.id != report.run_id
                and not run.dry_run
                and run.details
                and not run.details.get("reschedule")
                and run.details.get("archive_idle_days") is not None
            ),
            self.configured.hot_idle_days,
        )
        return report.archive_idle_days < previous

    def continuation(self, report: LifecycleReport) -> dict[str, str]:
        """The event that continues ``report``'s unfinished run."""
        if report.cursor is None:
            raise InvalidArgument(f"run {report.run_id!r} is complete")
        return {
            "action": "continue",
            "run_id": report.run_id,
            "started_at": report.started_at.isoformat(),
            "cursor": report.cursor,
        }

    def summary(self, days: int) -> dict[str, int]:
        """The counts of every lifecycle run of the last ``days`` days, added up (dry
        runs left out): the API's lifecycle metrics."""
        if days < 1:
            raise InvalidArgument(f"days must be at least 1, got {days}")
        return lifecycle_totals(self.repository, self.clock() - timedelta(days=days))

    def _sweep(
        self,
        report: LifecycleReport,
        cursor: SweepCursor,
        remaining_ms: Callable[[], int] | None,
    ) -> LifecycleReport:
        began = time.monotonic()
        now = report.started_at
        # A reschedule reads every scheduled record; a sweep those due at its start.
        due_by = now + RESCHEDULE_HORIZON if report.reschedule else now
        step = self._reschedule if report.reschedule else self._process
        margin_ms = self.settings.lifecycle_time_margin_seconds * 1000
        report.cursor = cursor.encode()
        self._save(report, RunStatus.RUNNING, began)
        try:
            with ThreadPoolExecutor(self.settings.lifecycle_workers) as pool:
                for shard in range(cursor.shard, self.repository.due_shards):
                    page_cursor = cursor.page if shard == cursor.shard else None
                    while True:
                        if remaining_ms is not None and remaining_ms() < margin_ms:
                            report.cursor = SweepCursor(shard, page_cursor).encode()
                            self._save(report, RunStatus.RUNNING, began)
                            return report
                        page = self.repository.due_images(
                            shard,
                            due_by,
                            limit=self.settings.lifecycle_page_size,
                            cursor=page_cursor,
                        )
                        for results in pool.map(
                            lambda image: step(image, now, report.dry_run), page.items
                        ):
                            for result in results:
                                report.add(result)
                        if page.cursor is None:
                            break
                        page_cursor = page.cursor
        except Exception:
            # Nothing of the run is lost: what it did is done, what it did not is still due.
            self._save(report, RunStatus.FAILED, began)
            raise
        report.cursor = None
        self._save(report, RunStatus.COMPLETED, began)
        return report

    def _save(self, report: LifecycleReport, status: RunStatus, began: float) -> None:
        counts = Counter(dict.fromkeys(COUNTED, 0))
        counts.update(report.counts)  # not `+`: a Counter sum drops the zeros
        counts["duration_ms"] = report.counts["duration_ms"] + round(
            (time.monotonic() - began) * 1000
        )
        finished = self.clock() if status is not RunStatus.RUNNING else None
        self.repository.save_run(
            RunRecord(
                kind=RunKind.LIFECYCLE,
                id=report.run_id,
                started_at=report.started_at,
                finished_at=finished,
                status=status,
                dry_run=report.dry_run,
                counts=dict(counts),
                cursor=report.cursor,
                details={
                    "reschedule": report.reschedule,
                    "archive_idle_days": report.archive_idle_days,
                },
                expires_at=self.clock() + timedelta(days=self.settings.run_record_days),
            )
        )
        if status is not RunStatus.RUNNING:
            report.counts["duration_ms"] = counts["duration_ms"]

    # ---- one record ----------------------------------------------------------------

    def _reschedule(self, image: ImageRecord, now: datetime, dry_run: bool) -> list[ItemResult]:
        """Store ``image``'s schedule as the current settings compute it (conditional on
        the record as read: a record changed meanwhile was rescheduled by its writer)."""
        step = next_step(image, self.settings)
        fresh = (step.action, step.due_at) if step is not None else (None, None)
        if (image.next_action, image.due_at) == fresh:
            return [ItemResult(image.id, Outcome.UNCHANGED)]
        detail = f"due {fresh[1].isoformat()}" if fresh[1] is not None else "nothing due"
        if not dry_run:
            try:
                self.repository.replace_image(image, scheduled(image, self.settings))
            except Conflict:
                return [ItemResult(image.id, Outcome.CHANGED)]
        return [ItemResult(image.id, Outcome.RESCHEDULED, fresh[0], detail)]

    def _process(self, image: ImageRecord, now: datetime, dry_run: bool) -> list[ItemResult]:
        """Every step due for ``image`` at ``now``. A sweep leaves nothing due at its
        own time: a late sweep's move can leave the image due for its next step at once
        (promoted to HOT after 90 days without access: archive), which a second
        delivery of the same schedule would otherwise do."""
        results = [self._step(image, now, dry_run)]
        while not dry_run and results[-1].outcome in _MOVED.values() and len(results) <= 3:
            current = self.repository.find_image(image.id)
            step = next_step(current, self.settings) if current is not None else None
            if current is None or step is None or step.due_at > now:
                break
            results.append(replace(self._step(current, now, dry_run), followed=True))
        return results

    def _step(self, image: ImageRecord, now: datetime, dry_run: bool) -> ItemResult:
        try:
            return self.apply(image, now, dry_run=dry_run)
        except Conflict:
            return ItemResult(image.id, Outcome.CHANGED)
        except (StorageError, NoBucketAvailable) as e:
            # Throttled, a provider down, no bucket left: the image stays due (and a
            # claim stays claimed), and the next sweep tries again.
            logger.warning("lifecycle of %s failed: %s", image.id, e)
            return ItemResult(image.id, Outcome.FAILED, detail=f"{type(e).__name__}: {e}")

    @acts_as("lifecycle")
    def apply(self, image: ImageRecord, now: datetime, *, dry_run: bool = False) -> ItemResult:
        """Do what the policy says is due for ``image`` (as read) at ``now``; with
        ``dry_run``, only say what that would be."""
        step = next_step(image, self.settings)
        rolled_back = False
        if image.move_to is not None and not self._still_wanted(image, step, now):
            # The claimed move is no longer the next step: let go of it (the stream
            # releases any copy it made), then do what the policy says now.
            rolled_back = True
            released = scheduled(image.model_copy(update={"move_to": None}), self.settings)
            image = released if dry_run else self.repository.replace_image(image, released)
        if step is None or step.due_at > now:
            if not dry_run and (image.next_action, image.due_at) != (
                step.action if step else None,
                step.due_at if step else None,
            ):
                image = self.repository.replace_image(image, scheduled(image, self.settings))
            return ItemResult(image.id, Outcome.RESCHEDULED, rolled_back=rolled_back)
        if step.action is ImageAction.SERVE and self._published_expired(image, now):
            # A late sweep (the publish's own request lost): the deletion is due too.
            step = Schedule(ImageAction.DELETE, now)
        if step.action is ImageAction.DELETE:
            if not dry_run:
                self.repository.replace_image(image, soft_deleted(image, now, self.settings))
            return ItemResult(image.id, Outcome.DELETED, step.action, rolled_back=rolled_back)
        if step.action is ImageAction.ARCHIVE and image.move_to is None:
            reason = self._archive_not_worth_it(image, now)
            if reason is not None:
                if not dry_run:
                    self.repository.replace_image(image, archive_skipped(image, now, self.settings))
                return ItemResult(image.id, Outcome.SKIPPED, step.action, reason, rolled_back)
        tier, backend = destination(step.action, self.settings)
        if (
            step.action is ImageAction.PROMOTE
            and image.move_to is None
            and self.settings.promotes_in_place()
        ):
            # Same offer on both sides: HOT where it lies (one conditional write).
            if not dry_run:
                self.repository.replace_image(image, promoted_in_place(image, now, self.settings))
            return ItemResult(image.id, Outcome.PROMOTED, step.action, "in place")
        if dry_run:
            return ItemResult(image.id, _MOVED[step.action], step.action, tier.value)
        return self._move(image, step.action, (tier, backend), now)

    def _published_expired(self, image: ImageRecord, now: datetime) -> bool:
        retention = timedelta(days=self.settings.published_retention_days)
        return image.published_at is not None and image.published_at + retention <= now

    def _still_wanted(self, image: ImageRecord, step: Schedule | None, now: datetime) -> bool:
        return (
            step is not None
            and step.due_at <= now
            and step.action in MOVE_DESTINATIONS
            and image.move_to is not None
            and destination(step.action, self.settings)
            == (image.move_to.tier, image.move_to.backend)
            and not (step.action is ImageAction.SERVE and self._published_expired(image, now))
        )

    def _archive_not_worth_it(self, image: ImageRecord, now: datetime) -> str | None:
        """Why archiving ``image`` is skipped, or None to archive it: its one-time cost
        (requests, egress, the source's minimum storage duration) against what COLD
        saves until the image would leave it."""
        if not self.settings.cost_aware_moves or image.location is None:
            return None
        estimate = self.costs.move(
            image.stored_size,
            image.location.tier,
            TierName.COLD,
            stored_since=image.placed_at or image.uploaded_at,
            now=now,
            until=now + timedelta(days=self.settings.cold_retention_days),
        )
        if estimate.worth_it:
            return None
        return f"cost: {estimate.cost:.8f} USD to move, saves {estimate.saving:.8f} USD"

    # ---- moves ---------------------------------------------------------------------

    def _move(
        self,
        image: ImageRecord,
        action: ImageAction,
        shelf: tuple[TierName, BackendName],
        now: datetime,
    ) -> ItemResult:
        assert image.location is not None  # only live images are due for a move
        resumed = image.move_to is not None
        if not resumed:
            image = self._claim(image, shelf)
        try:
            image = self._copy_or_retarget(image, shelf, resumed=resumed)
        except ObjectNotFound:
            # The source is gone and the destination has no good copy: nothing to move.
            with acting(
                "lifecycle", reason=f"{action.value}: source object missing", clock=self.clock
            ):
                self.repository.replace_image(image, lost(image))
            return ItemResult(image.id, Outcome.LOST, action, "source object missing")
        except ChecksumMismatch as e:
            # Do not flip to bytes that are not the image's; give the claim back.
            self.repository.replace_image(image, image.model_copy(update={"move_to": None}))
            return ItemResult(image.id, Outcome.FAILED, action, f"checksum: {e}", True)
        assert image.move_to is not None
        target = image.move_to
        self.repository.replace_image(image, moved(image, target, now, self.settings))
        return ItemResult(image.id, _MOVED[action], action, f"{target.bucket}")

    def _claim(
        self,
        image: ImageRecord,
        shelf: tuple[TierName, BackendName],
        *,
        exclude: set[str] | None = None,
    ) -> ImageRecord:
        assert image.location is not None
        tier, backend = shelf
        bucket = self.placement.choose(
            tier, image.stored_size, exclude=exclude or set(), backend=backend
        )
        # A fresh key, never the source's: a restore to the bucket the image was
        # archived from must not land where a late cleanup of that old place deletes.
        target = Location(
            tier=tier,
            backend=bucket.backend,
            bucket=bucket.name,
            key=replacement_key(image.location.key),
        )
        return self.repository.replace_image(image, image.model_copy(update={"move_to": target}))

    def _copy_or_retarget(
        self, image: ImageRecord, shelf: tuple[TierName, BackendName], *, resumed: bool
    ) -> ImageRecord:
        """Copy to the claimed destination; a destination bucket that is full or gone
        is marked so, and the claim moves to the next bucket (once)."""
        assert image.move_to is not None
        try:
            self._copy(image, resumed=resumed)
        except (BucketFull, BucketNotFound) as e:
            if e.bucket != image.move_to.bucket:
                raise  # the source bucket is gone: not a placement problem
            self.placement.refused(shelf[0], image.move_to.bucket, e)
            image = self._claim(image, shelf, exclude={image.move_to.bucket})
            self._copy(image, resumed=False)
        return image

    def _copy(self, image: ImageRecord, *, resumed: bool) -> None:
        source, destination = image.location, image.move_to
        assert source is not None
        assert destination is not None
        target = self.backends.get(destination.backend.value)
        # A claim made just now names a fresh key nothing was written to; one found on
        # the record may have been copied by a sweep that crashed after the copy.
        if resumed and self._landed(target, destination, image):
            return
        origin = self.backends.get(source.backend.value)
        # Written in the destination tier's class (COLD on S3: Glacier Instant Retrieval).
        storage_class = self.settings.storage_class(destination.tier, destination.backend)
        if source.backend is destination.backend:
            origin.copy(
                source.bucket,
                source.key,
                destination.bucket,
                destination.key,
                storage_class=storage_class,
            )
        else:
            # Streamed from one provider to the other; the destination refuses bytes that
            # do not hash to the image's SHA-256 (see StorageBackend.put_stream).
            info, chunks = origin.open(source.bucket, source.key)
            expected = image.stored_sha256 or info.sha256
            if expected is None:
                raise ChecksumMismatch(
                    "no recorded SHA-256 to verify a copy against",
                    backend=source.backend.value,
                    bucket=source.bucket,
                    key=source.key,
                )
            target.put_stream(
                destination.bucket,
                destination.key,
                chunks,
                size=image.stored_size,
                sha256=expected,
                content_type=info.content_type or "application/octet-stream",
                metadata=info.metadata,
                storage_class=storage_class,
            )
        if not self._landed(target, destination, image):
            raise ChecksumMismatch(
                "the copy does not match the image's recorded size and SHA-256",
                backend=destination.backend.value,
                bucket=destination.bucket,
                key=destination.key,
            )

    @staticmethod
    def _landed(target: StorageBackend, destination: Location, image: ImageRecord) -> bool:
        """Whether the destination holds exactly the image's stored bytes."""
        try:
            info = target.head(destination.bucket, destination.key)
        except ObjectNotFound:
            return False
        if info.size != image.stored_size:
            return False
        if image.stored_sha256 is None or info.sha256 == image.stored_sha256:
            return True
        if info.sha256 is not None:
            return False
        # Written by something else, without our checksum: read it and see.
        data = target.get(destination.bucket, destination.key).data
        return sha256_hex(data) == image.stored_sha256
