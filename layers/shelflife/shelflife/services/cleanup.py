"""Deleting the objects a record change let go of: the service behind the cleanup
function, which the table's stream drives (NEW_AND_OLD_IMAGES).

Objects are deleted in exactly two places (DESIGN.md, invariant 2); this is one. It
deletes what the old record referenced and the new one does not
(``records.released_objects``), unless something still references it:

- the record as it is now (a later change may point at the same key once more: an
  image restored to the bucket it was archived from, a soft-deleted image uploaded
  again);
- another record with the same original bytes (deduplicated content: an object is
  deleted when the last record referencing it lets go).

A cleanup that fails is retried by the stream; the attempts are kept as a
``CleanupTask``. After ``cleanup_max_attempts`` the change goes to the dead-letter
queue with its reason, and the stream moves on; ``redrive`` replays the queue through
the same code once the cause is mended. Replaying a change any number of times ends in
the same state: deleting what is already gone is done.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shelflife.domain.clock import utc_now
from shelflife.domain.errors import BucketNotFound, InvalidArgument, RecordsExpired
from shelflife.domain.measurements import Measurement
from shelflife.domain.records import (
    CleanupStatus,
    CleanupTask,
    ImageRecord,
    ImageState,
    Location,
    StreamChange,
    released_objects,
)
from shelflife.domain.repository import Repository
from shelflife.domain.settings import Settings

if TYPE_CHECKING:
    from shelflife.domain.ports import ChangeStream, Queue, QueuedMessage
    from shelflife.domain.storage import Backends

logger = logging.getLogger(__name__)

# Marks the dead-letter messages this service writes, as opposed to the batch
# descriptions Lambda's on-failure destination writes for a failed invocation.
DEAD_LETTER_SOURCE = "shelflife.services.cleanup"
# A record in these states keeps no capture facts.
_GONE = (ImageState.DELETED, ImageState.REJECTED)
# Failures listed in a health report.
RECENT_FAILURES = 20


class Outcome(StrEnum):
    COMPLETED = "completed"  # deleted what the change let go of
    SKIPPED = "skipped"  # all of it is still referenced: nothing deleted
    IGNORED = "ignored"  # the change let go of nothing
    FAILED = "failed"  # out of attempts: in the dead-letter queue
    UNREADABLE = "unreadable"  # not a stream record of this table: nothing to delete


OUTCOME_METRICS = {
    Outcome.COMPLETED: "CleanupCompleted",
    Outcome.SKIPPED: "CleanupSkipped",
    Outcome.IGNORED: "CleanupIgnored",
    Outcome.FAILED: "CleanupFailed",
    Outcome.UNREADABLE: "CleanupUnreadable",
}


@dataclass(frozen=True)
class Release:
    outcome: Outcome
    deleted: tuple[Location, ...] = ()
    kept: tuple[Location, ...] = ()  # let go of by this record, referenced elsewhere
    task: CleanupTask | None = None  # for a failure: what is remembered of it
    image_id: str | None = None  # of the stream record, when it was read
    event_id: str | None = None
    error: str | None = None  # why an unreadable record was not read

    def measurements(self) -> list[Measurement]:
        """One count per outcome (the alarms in template.yaml watch CleanupFailed), and
        the objects deleted."""
        found = [Measurement(OUTCOME_METRICS[self.outcome], 1)]
        if self.deleted:
            found.append(Measurement("CleanupObjectsDeleted", len(self.deleted)))
        return found

    def log_fields(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "event_id": self.event_id,
            "deleted": [place.model_dump(mode="json") for place in self.deleted],
            "kept": [place.model_dump(mode="json") for place in self.kept],
            "error": self.task.error if self.task else self.error,
        }


@dataclass
class RedriveReport:
    """What a redrive of the dead-letter queue did, message by message."""

    completed: int = 0  # replayed, and the message deleted
    failed: int = 0  # failed again; the message stays for the next redrive
    expired: int = 0  # Lambda's batch description of records the stream no longer has
    unreadable: int = 0  # not a message cleanup wrote or understands; left in place
    objects_deleted: int = 0
    errors: list[str] = field(default_factory=list)

    def measurements(self) -> list[Measurement]:
        return [
            Measurement("CleanupRedriven", self.completed),
            Measurement("CleanupRedriveFailed", self.failed),
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "failed": self.failed,
            "expired": self.expired,
            "unreadable": self.unreadable,
            "objects_deleted": self.objects_deleted,
            "errors": self.errors[:RECENT_FAILURES],
        }


@dataclass(frozen=True)
class CleanupHealth:
    status: str  # "ok", "warning" (thresholds passed) or "alarm" (dead letters waiting)
    dead_letters: int | None  # messages in the dead-letter queue (None: no queue set)
    pending: int  # changes that failed and wait in the stream for their next attempt
    failed_last_hour: int
    reasons: tuple[str, ...]
    recent_failures: tuple[CleanupTask, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "dead_letters": self.dead_letters,
            "pending": self.pending,
            "failed_last_hour": self.failed_last_hour,
            "reasons": list(self.reasons),
            "recent_failures": [task.model_dump(mode="json") for task in self.recent_failures],
        }


class CleanupService:
    def __init__(
        self,
        repository: Repository,
        backends: Backends,
        *,
        settings: Settings | None = None,
        dead_letters: Queue | None = None,
        stream: ChangeStream | None = None,
        read_change: Callable[[Mapping[str, Any]], StreamChange] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repository = repository
        self.backends = backends
        self.settings = settings
        self.dead_letters = dead_letters
        self.stream = stream
        # The table adapter's reader of a stream record as Lambda delivers it: the
        # redrive reads records back from dead letters and from the stream.
        self.read_change = read_change
        self.clock = clock

    # ---- one change --------------------------------------------------------------

    def release(self, old: ImageRecord | None, new: ImageRecord | None) -> Release:
        """Delete what the change from ``old`` to ``new`` let go of and nothing
        references any more. Safe to repeat."""
        released = released_objects(old, new)
        if not released:
            return Release(Outcome.IGNORED)
        image = old or new
        assert image is not None
        forgotten = new is None or new.state in _GONE
        if forgotten:
            # Before the record is read, not after: see _settle_capture.
            expiry = self._expire_capture(image.id, new)
        # Only the image's own record can point at its objects: every key carries the
        # image's id and a token unique to its placement (records.placement_key), and
        # the id is the owner's and the content's, so no other record shares an object.
        current = self.repository.find_image(image.id)
        kept = released & (current.referenced() if current is not None else frozenset())
        deleted = []
        for place in sorted(released - kept, key=_where):
            # A bucket that is gone took the object with it.
            with contextlib.suppress(BucketNotFound):
                self.backends.get(place.backend.value).delete(place.bucket, place.key)
            deleted.append(place)
        if forgotten:
            self._settle_capture(image.id, current, expiry)
        ordered_kept = tuple(sorted(kept, key=_where))
        if not deleted:
            return Release(Outcome.SKIPPED, kept=ordered_kept)
        return Release(Outcome.COMPLETED, deleted=tuple(deleted), kept=ordered_kept)

    def process_record(self, record: Mapping[str, Any]) -> Release:
        """A stream record as Lambda delivers it: ``process`` of its change. One that is
        not a stream record of this table is ``UNREADABLE`` and not raised: there is
        nothing to delete, retrying it would hold up the shard, and the reconciler
        finds any object it might have concerned."""
        try:
            change = self.change(record)
        except InvalidArgument as e:
            return Release(Outcome.UNREADABLE, error=str(e))
        return replace(self.process(change), image_id=change.image_id, event_id=change.event_id)

    def process(self, change: StreamChange) -> Release:
        """One stream record: release what it let go of, and remember a failure. A
        failure with attempts left is raised (the stream delivers the record again); the
        last one goes to the dead-letter queue and is returned as ``FAILED``."""
        try:
            result = self.release(change.old, change.new)
        except Exception as error:
            # Any failure counts: a provider down, a permission missing, a bug.
            task = self._failed(change, error)
            if task.status is CleanupStatus.FAILED:
                return Release(Outcome.FAILED, task=task)
            raise
        self._completed(change)
        return result

    # ---- the dead-letter queue ---------------------------------------------------

    def redrive(self, *, max_messages: int = 100) -> RedriveReport:
        """Replay up to ``max_messages`` messages of the dead-letter queue through the
        same code as the stream. A message is deleted once its change is done; one that
        fails again stays (and its task counts the attempt)."""
        if self.dead_letters is None:
            raise InvalidArgument("no cleanup dead-letter queue is configured")
        if not 1 <= max_messages <= 10_000:
            raise InvalidArgument(f"max_messages must be 1-10000, got {max_messages}")
        report = RedriveReport()
        for message in self.dead_letters.receive(max_messages):
            self._redrive_one(message, report)
        return report

    def _redrive_one(self, message: QueuedMessage, report: RedriveReport) -> None:
        body = message.json()
        try:
            changes = self._changes_in(body)
        except RecordsExpired as e:
            report.expired += 1
            report.errors.append(f"{message.message_id}: {e}")
            return
        except InvalidArgument as e:
            report.unreadable += 1
            report.errors.append(f"{message.message_id}: {e}")
            return
        for change in changes:
            try:
                result = self.release(change.old, change.new)
            except Exception as error:
                self._failed(change, error, redrive=True)
                report.failed += 1
                report.errors.append(f"{change.image_id}: {_describe(error)}")
                return
            self._completed(change)
            report.objects_deleted += len(result.deleted)
        self.dead_letters.delete(message)  # type: ignore[union-attr]
        report.completed += 1

    def change(self, record: Mapping[str, Any]) -> StreamChange:
        """A stream record as Lambda delivers it, read into domain records by the
        table adapter's reader (``read_change``, given by the wiring)."""
        if self.read_change is None:
            raise InvalidArgument("this cleanup service was built without a stream reader")
        return self.read_change(record)

    def _changes_in(self, body: Any) -> list[StreamChange]:
        if isinstance(body, dict) and body.get("source") == DEAD_LETTER_SOURCE:
            return [self.change(body["record"])]
        if isinstance(body, dict) and "DDBStreamBatchInfo" in body:
            if self.stream is None:
                raise RecordsExpired("no stream reader to fetch Lambda's failed batch")
            batch = self.stream.batch(body["DDBStreamBatchInfo"])
            return [self.change(record) for record in batch]
        raise InvalidArgument("not a cleanup dead letter nor a stream batch description")

    # ---- status ------------------------------------------------------------------

    def health(self) -> CleanupHealth:
        """Dead letters waiting (alarm), changes pending a retry and failures in the
        last hour (warning past the thresholds), and the latest failures."""
        settings = self._settings
        now = self.clock()
        pending = self.repository.cleanup_tasks(status=CleanupStatus.RETRYING)
        failed = self.repository.cleanup_tasks(status=CleanupStatus.FAILED)
        failed_last_hour = sum(1 for task in failed if task.updated_at >= now - timedelta(hours=1))
        depth = self.dead_letters.depth() if self.dead_letters is not None else None
        reasons = []
        if depth:
            reasons.append(f"{depth} change(s) in the dead-letter queue: redrive once mended")
        if len(pending) > settings.cleanup_warning_pending:
            reasons.append(
                f"{len(pending)} changes pending a retry (more than "
                f"{settings.cleanup_warning_pending})"
            )
        if failed_last_hour > settings.cleanup_warning_failed_per_hour:
            reasons.append(
                f"{failed_last_hour} changes failed in the last hour (more than "
                f"{settings.cleanup_warning_failed_per_hour})"
            )
        status = "alarm" if depth else "warning" if reasons else "ok"
        recent = sorted([*pending, *failed], key=lambda t: t.updated_at, reverse=True)
        return CleanupHealth(
            status=status,
            dead_letters=depth,
            pending=len(pending),
            failed_last_hour=failed_last_hour,
            reasons=tuple(reasons),
            recent_failures=tuple(recent[:RECENT_FAILURES]),
        )

    # ---- helpers -----------------------------------------------------------------

    @property
    def _settings(self) -> Settings:
        if self.settings is None:
            raise InvalidArgument("this cleanup service was built without settings")
        return self.settings

    def _expire_capture(self, image_id: str, deleted: ImageRecord | None) -> datetime:
        """The deleted image's capture facts go when its record does (the TTL), at
        once when the record is gone."""
        at = (deleted and deleted.expires_at) or self.clock()
        self.repository.expire_capture(image_id, at)
        return at

    def _settle_capture(self, image_id: str, current: ImageRecord | None, expiry: datetime) -> None:
        """Undo the expiry if the record (``current``, read after the expiry was
        written) is live again: its owner uploaded the same bytes since, and the facts
        are the new upload's. Ingest writes the facts after its claim, so whatever the
        interleaving, either the new facts overwrote the expired item, or this read sees
        the claim (pending, then active) and keeps them. Reading first and expiring
        after let a re-upload between the two lose its facts to the old expiry. A later
        deletion of the same image, read here, gets its own (later) expiry."""
        if current is not None and current.state not in _GONE:
            self.repository.keep_capture(image_id)
        elif current is not None and current.expires_at and current.expires_at != expiry:
            self.repository.expire_capture(image_id, current.expires_at)

    def _failed(
        self, change: StreamChange, error: Exception, *, redrive: bool = False
    ) -> CleanupTask:
        settings = self._settings
        now = self.clock()
        previous = self.repository.find_cleanup_task(change.event_id)
        attempts = (previous.attempts if previous else 0) + 1
        out_of_attempts = redrive or (
            self.dead_letters is not None and attempts >= settings.cleanup_max_attempts
        )
        task = CleanupTask(
            event_id=change.event_id,
            image_id=change.image_id,
            status=CleanupStatus.FAILED if out_of_attempts else CleanupStatus.RETRYING,
            attempts=attempts,
            error=_describe(error),
            first_failed_at=previous.first_failed_at if previous else now,
            updated_at=now,
            expires_at=now + timedelta(days=settings.cleanup_task_days),
        )
        # Recorded before the dead letter is sent: a crash between the two finds the
        # task out of attempts at the next delivery and sends it then.
        self.repository.save_cleanup_task(task)
        if out_of_attempts and not redrive and self.dead_letters is not None:
            self.dead_letters.send(
                {
                    "source": DEAD_LETTER_SOURCE,
                    "event_id": change.event_id,
                    "image_id": change.image_id,
                    "error": task.error,
                    "attempts": attempts,
                    "failed_at": now.isoformat(),
                    "record": dict(change.raw),
                }
            )
        logger.warning(
            "cleanup of %s failed (attempt %d): %s", change.image_id, attempts, task.error
        )
        return task

    def _completed(self, change: StreamChange) -> None:
        previous = self.repository.find_cleanup_task(change.event_id)
        if previous is None or previous.status is CleanupStatus.COMPLETED:
            return
        done = {"status": CleanupStatus.COMPLETED, "updated_at": self.clock()}
        self.repository.save_cleanup_task(previous.model_copy(update=done))


def _where(place: Location) -> tuple[str, str, str]:
    return (place.backend.value, place.bucket, place.key)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
