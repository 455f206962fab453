"""The storage policy as pure functions of a record, a time and the settings: no I/O,
so every rule is tested on its own and every service applies the same one.

The lifecycle (defaults from the seeds, every number a setting):

- an upload lands in TEMP;
- a published image is deleted ``published_retention_days`` after publishing, wherever
  it is; before that, when the deployment serves published photos from their own
  buckets (``Settings.serves_published``: R2 for free egress, once measured views pay
  for the move), it is moved there at once (``serve``), and otherwise never moved;
- anything else in TEMP is promoted to HOT ``temp_hours`` after its upload; when TEMP
  and HOT store on the same offer it stays where it lies and nothing is written: its
  next step is the one it has in HOT (``tier_at`` tells it is in HOT), or, when that
  would come before ``temp_hours``, a promotion that relabels it (``promoted_in_place``);
- HOT with no access (or upload) for ``hot_idle_days`` (which the lifecycle may
  shorten from the deployment's measured publish ages: ``shelflife.domain.tuning``) is
  archived to COLD, or, when
  the archive is not worth its one-time cost, stays in HOT and is deleted when it would
  have left COLD;
- COLD is deleted ``cold_retention_days`` after it arrived there, unless it was
  accessed ``restore_after_accesses`` times since, which brings it back to HOT;
- a pending claim nobody finished is deleted after ``PENDING_CLAIM_LIFETIME``.

``next_step`` gives a record's next action and its due time from the record alone, so
every writer stores the same schedule (``scheduled``) and the sweep reads only what is
due through the sparse due index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shelflife.domain.records import ImageAction, ImageRecord, ImageState, Location
from shelflife.domain.settings import BackendName, Settings, TierName

# A claim (pending record) not activated by then is abandoned: ingest's retries are
# long over (Lambda gives up after six hours).
PENDING_CLAIM_LIFETIME = timedelta(days=1)
# Where each move goes.
MOVE_DESTINATIONS = {
    ImageAction.PROMOTE: TierName.HOT,
    ImageAction.ARCHIVE: TierName.COLD,
    ImageAction.RESTORE: TierName.HOT,
    ImageAction.SERVE: TierName.HOT,  # on the serve backend: ``destination``
}


def destination(action: ImageAction, settings: Settings) -> tuple[TierName, BackendName]:
    """Where a move goes: the tier, and the backend of its buckets there (HOT's own,
    or the serving buckets' for ``serve``)."""
    tier = MOVE_DESTINATIONS[action]
    if action is ImageAction.SERVE and settings.serve is not None:
        return tier, settings.serve.backend
    return tier, settings.tier(tier).backend


def serving(image: ImageRecord, settings: Settings) -> bool:
    """Whether ``image`` lies in the serving buckets."""
    return (
        settings.serve is not None
        and image.location is not None
        and image.location.tier is TierName.HOT
        and image.location.backend is settings.serve.backend
    )


def rules(settings: Settings) -> list[dict[str, Any]]:
    """The policy above in words and numbers, as ``GET /tiers`` shows it: kept here,
    beside the functions that apply it, so a change of a rule is made in one file."""
    s = settings
    moves = {action: tier.value for action, tier in MOVE_DESTINATIONS.items()}
    return [
        {"rule": "upload", "to": TierName.TEMP.value, "after": "at once"},
        {"rule": "publish", "action": "delete", "after_days": s.published_retention_days},
        {
            "rule": "serve",
            "from": "published",
            "to": f"{TierName.HOT.value} on {s.serve.backend.value}" if s.serve else None,
            "after": "at once",
            "when": s.serve_published if s.serve else "never",
        },
        {
            "rule": "promote",
            "from": TierName.TEMP.value,
            "to": moves[ImageAction.PROMOTE],
            "after_hours": s.temp_hours,
            "in_place": s.promotes_in_place(),
        },
        {
            "rule": "archive",
            "from": TierName.HOT.value,
            "to": moves[ImageAction.ARCHIVE],
            "after_days_without_access": s.hot_idle_days,
            "only_when_worth_it": s.cost_aware_moves,
        },
        {
            "rule": "restore",
            "from": TierName.COLD.value,
            "to": moves[ImageAction.RESTORE],
            "after_accesses": s.restore_after_accesses,
        },
        {"rule": "expire", "from": TierName.COLD.value, "after_days": s.cold_retention_days},
    ]


@dataclass(frozen=True)
class Schedule:
    action: ImageAction
    due_at: datetime


def next_step(image: ImageRecord, settings: Settings) -> Schedule | None:
    """What happens to ``image`` next, and when; None when nothing ever will (rejected,
    deleted, lost). A move in flight (``move_to``) does not change the answer: the
    sweep finishes it if it is still the next step, and rolls it back otherwise."""
    if image.state is ImageState.PENDING:
        return Schedule(ImageAction.DELETE, image.uploaded_at + PENDING_CLAIM_LIFETIME)
    if image.state is not ImageState.ACTIVE or image.location is None:
        return None
    if image.published_at is not None:
        if settings.serves_published() and not serving(image, settings):
            # At once; the lifecycle deletes instead when the deletion is due too.
            return Schedule(ImageAction.SERVE, image.published_at)
        retention = timedelta(days=settings.published_retention_days)
        return Schedule(ImageAction.DELETE, image.published_at + retention)
    tier = image.tier
    cold_retention = timedelta(days=settings.cold_retention_days)
    if tier is TierName.TEMP:
        promote = image.uploaded_at + timedelta(hours=settings.temp_hours)
        if settings.promotes_in_place():
            # Promoting would only relabel it (TEMP's bucket stores on HOT's offer),
            # and HOT's clocks run from the upload: its step in HOT is its next step,
            # and no write is spent on the label (tier_at tells the tier it is in).
            # Unless that step would come before TEMP's hours are over.
            hot = _hot_step(image, settings)
            if hot.due_at >= promote:
                return hot
        return Schedule(ImageAction.PROMOTE, promote)
    if tier is TierName.HOT:
        return _hot_step(image, settings)
    placed = image.placed_at or image.uploaded_at
    if image.access_count - image.placed_access_count >= settings.restore_after_accesses:
        return Schedule(ImageAction.RESTORE, image.last_accessed_at or placed)
    return Schedule(ImageAction.DELETE, placed + cold_retention)


def _hot_step(image: ImageRecord, settings: Settings) -> Schedule:
    last_use = max(image.uploaded_at, image.last_accessed_at or image.uploaded_at)
    skipped = image.archive_skipped_at
    if skipped is not None and last_use <= skipped:
        return Schedule(ImageAction.DELETE, skipped + timedelta(days=settings.cold_retention_days))
    return Schedule(ImageAction.ARCHIVE, last_use + timedelta(days=settings.hot_idle_days))


def tier_at(image: ImageRecord, now: datetime, settings: Settings) -> TierName | None:
    """The tier ``image`` is in at ``now``: its record's (``ImageRecord.tier``), or HOT
    once ``temp_hours`` are over for one in TEMP that is promoted in place, which
    writes nothing (``next_step``)."""
    promote = image.uploaded_at + timedelta(hours=settings.temp_hours)
    if image.tier is TierName.TEMP and settings.promotes_in_place() and now >= promote:
        return TierName.HOT
    return image.tier


def scheduled(image: ImageRecord, settings: Settings) -> ImageRecord:
    """``image`` with its next action and due time stored (the due index's keys). A
    record with a move in flight keeps an earlier due time, so the next sweep sees it
    and finishes or rolls back the move, whatever happened to the record since."""
    step = next_step(image, settings)
    if (
        image.move_to is not None
        and image.due_at is not None
        and (step is None or image.due_at < step.due_at)
    ):
        return image
    return image.model_copy(
        update={
            "next_action": step.action if step else None,
            "due_at": step.due_at if step else None,
        }
    )


def accessed(image: ImageRecord, now: datetime, settings: Settings) -> ImageRecord:
    """``image`` read at ``now``: the HOT clock starts again, and a COLD image may now
    be due for a restore.

    A published photo is returned unchanged, so nothing is written: its next steps
    (served, then deleted ``published_retention_days`` after publishing) do not depend
    on its accesses, and its views are counted by day (``published_views``), which is
    what serving it is decided on. Recording each would be the record's write, about
    six write units, on every view of the photos viewed most (``[stack] view``)."""
    if image.published_at is not None:
        return image
    return scheduled(
        image.model_copy(update={"last_accessed_at": now, "access_count": image.access_count + 1}),
        settings,
    )


def published(image: ImageRecord, now: datetime, settings: Settings) -> ImageRecord:
    """``image`` published at ``now``: its deletion is scheduled."""
    return scheduled(image.model_copy(update={"published_at": now}), settings)


def moved(
    image: ImageRecord, destination: Location, now: datetime, settings: Settings
) -> ImageRecord:
    """``image`` once its object is verified at ``destination``: the record points
    there, the move is over, and the clocks of the new tier start."""
    return scheduled(
        image.model_copy(
            update={
                "location": destination,
                "move_to": None,
                "placed_at": now,
                "placed_access_count": image.access_count,
                "archive_skipped_at": None,
                "promoted_at": None,
            }
        ),
        settings,
    )


def promoted_in_place(image: ImageRecord, now: datetime, settings: Settings) -> ImageRecord:
    """``image`` promoted to HOT without moving: its TEMP bucket stores on HOT's offer,
    so the object stays (and so do ``placed_at`` and its bucket's counters); HOT's
    clocks apply from here."""
    return scheduled(image.model_copy(update={"promoted_at": now}), settings)


def archive_skipped(image: ImageRecord, now: datetime, settings: Settings) -> ImageRecord:
    """``image`` left in HOT because archiving it costs more than it saves."""
    return scheduled(
        image.model_copy(update={"archive_skipped_at": now, "move_to": None}), settings
    )


def cleanup_eligible(image: ImageRecord, now: datetime, settings: Settings) -> bool:
    """Whether the age-based cleanup (a bucket past the cleanup threshold) may delete
    ``image``: a live image older than ``cleanup_min_age_days`` that the lifecycle does
    not still keep. An unpublished draft is kept (its owner is still working on it); a
    published one is kept until its scheduled deletion, and is fair game after it."""
    if not image.live:
        return False
    if image.uploaded_at > now - timedelta(days=settings.cleanup_min_age_days):
        return False
    if image.published_at is not None:
        return now >= image.published_at + timedelta(days=settings.published_retention_days)
    return image.draft_id is None


def soft_deleted(image: ImageRecord, now: datetime, settings: Settings) -> ImageRecord:
    """``image`` soft-deleted at ``now``: no longer live (its bucket stops counting it,
    the stream tells cleanup to delete the object), nothing scheduled, and removed by
    the table's TTL after ``deleted_record_days``."""
    return image.model_copy(
        update={
            "state": ImageState.DELETED,
            "move_to": None,
            "next_action": None,
            "due_at": None,
            "expires_at": now + timedelta(days=settings.deleted_record_days),
        }
    )


def lost(image: ImageRecord) -> ImageRecord:
    """``image`` whose object is gone: kept for a human to decide, counted nowhere,
    scheduled for nothing."""
    return image.model_copy(
        update={"state": ImageState.LOST, "move_to": None, "next_action": None, "due_at": None}
    )
