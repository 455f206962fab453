"""The storage policy as pure functions of a record, a time and the settings: no I/O,
so every rule is tested on its own and every service applies the same one."""

from __future__ import annotations

from datetime import datetime, timedelta

from shelflife.settings import Settings
from shelflife.table.records import ImageRecord, ImageState


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
            "next_action": None,
            "due_at": None,
            "expires_at": now + timedelta(days=settings.deleted_record_days),
        }
    )
