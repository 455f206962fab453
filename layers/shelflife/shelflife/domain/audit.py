"""The audit trail: every change to every image, who made it and why.

How it is written, so that no writer can forget it:

1. Whoever acts says so once, around what it does (``acting``): a function names
   itself ("ingest", "lifecycle", "capacity", "reconciler"), the api names its caller
   ("user:<id>", "admin:<id>").
2. The repository, on every write of an image, derives what the write did from the
   record before and after (``change_action``) and stamps it on the record with the
   actor and the time (``ImageRecord.change``); a write that changes nothing the trail
   records (a view, a schedule, a claim) clears the stamp. No service writes an entry.
3. The table's stream carries each stamped write to the audit function, which turns it
   into one entry (``entry_of_change``) keyed by the image and the write's version: the
   stream's at-least-once delivery writes the same item again, never a second one.

The one change that writes no record, a duplicate upload, is entered by ingest itself
(``duplicate_entry``), keyed by the upload so a redelivery enters it once.

Entries live in a table of their own (``AuditLog``) until their TTL
(``Settings.audit_retention_days``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from pydantic import Field

from shelflife.domain.clock import now
from shelflife.domain.errors import InvalidArgument
from shelflife.domain.records import (
    Change,
    ChangeAction,
    ImageAction,
    ImageRecord,
    ImageState,
    Page,
    Timestamp,
    _Record,
)
from shelflife.domain.settings import TierName

# The actor of a write made outside any ``acting`` block: a bug the tests look for.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Actor:
    name: str
    reason: str | None = None
    # What an image that appears live is: ``adopted`` by the reconciler, ``imported``.
    arrival: ChangeAction | None = None
    # The actor's clock (a service's own, which tests set): the time of its changes.
    clock: Callable[[], datetime] = now


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "shelflife_audit_actor", default=None
)


@contextlib.contextmanager
def acting(
    name: str,
    *,
    reason: str | None = None,
    arrival: ChangeAction | None = None,
    clock: Callable[[], datetime] = now,
) -> Iterator[Actor]:
    """Every image written inside this block was written by ``name`` (for ``reason``),
    at ``clock``'s time. Blocks nest: the innermost names the actor."""
    actor = Actor(name, reason, arrival, clock)
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


F = TypeVar("F", bound=Callable[..., Any])


def acts_as(name: str, *, arrival: ChangeAction | None = None) -> Callable[[F], F]:
    """A service method whose writes are ``name``'s, at the service's own clock (its
    ``clock`` attribute, as every service has)."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            with acting(name, arrival=arrival, clock=getattr(self, "clock", now)):
                return method(self, *args, **kwargs)

        return cast(F, run)

    return decorate


def current_actor() -> Actor:
    return _actor.get() or Actor(UNKNOWN)


def user_actor(user_id: str, *, admin: bool = False) -> str:
    """A person as the trail names them; functions are named bare, so a user called
    "lifecycle" is still told apart."""
    return f"{'admin' if admin else 'user'}:{user_id}"


def change_action(previous: ImageRecord | None, updated: ImageRecord) -> ChangeAction | None:
    """What writing ``updated`` over ``previous`` does, as the trail records it; None
    for a write it does not record (a pending claim, a view, a schedule, a move's
    claimed destination)."""
    state = updated.state
    before = previous.state if previous is not None else None
    if state is ImageState.PENDING:
        return None
    if state is not ImageState.ACTIVE:
        if state is before:
            return None
        return {
            ImageState.REJECTED: ChangeAction.QUARANTINED,
            ImageState.DELETED: ChangeAction.DELETED,
            ImageState.LOST: ChangeAction.MARKED_LOST,
        }[state]
    if before is ImageState.LOST:
        return ChangeAction.RESTORED
    if previous is None or before is not ImageState.ACTIVE:
        return ChangeAction.STORED
    if previous.location != updated.location or (
        previous.promoted_at is None and updated.promoted_at is not None
    ):
        return ChangeAction.MOVED
    if previous.published_at is None and updated.published_at is not None:
        return ChangeAction.PUBLISHED
    if previous.archive_skipped_at is None and updated.archive_skipped_at is not None:
        return ChangeAction.ARCHIVE_SKIPPED
    return None


_STEPS = {
    (TierName.TEMP, TierName.HOT): "promote",
    (TierName.HOT, TierName.COLD): "archive",
    (TierName.TEMP, TierName.COLD): "archive",
    (TierName.COLD, TierName.HOT): "restore",
}


def _derived_reason(
    action: ChangeAction, previous: ImageRecord | None, updated: ImageRecord
) -> str | None:
    """What the records say of why: the policy's step for a move, the refusal for a
    quarantine, the policy's due deletion."""
    if action is ChangeAction.QUARANTINED:
        return updated.rejection_reason
    if action is ChangeAction.MOVED and previous is not None:
        if previous.location == updated.location:
            return "promote (in place)"
        before, after = previous.tier, updated.tier
        if before is not None and after is not None and (before, after) in _STEPS:
            return _STEPS[(before, after)]
        if previous.next_action is ImageAction.SERVE:
            return "serve"
        return "transfer"
    if (
        action is ChangeAction.DELETED
        and previous is not None
        and previous.next_action is ImageAction.DELETE
    ):
        return "retention over"
    if action is ChangeAction.ARCHIVE_SKIPPED:
        return "archiving would cost more than it saves"
    return None


def stamped(previous: ImageRecord | None, updated: ImageRecord) -> ImageRecord:
    """``updated`` as the repository writes it: with the change it makes, by the current
    actor, or with no change when the write makes none the trail records."""
    action = change_action(previous, updated)
    if action is None:
        return updated if updated.change is None else updated.model_copy(update={"change": None})
    actor = current_actor()
    at = actor.clock()
    if action is ChangeAction.STORED and actor.arrival is not None:
        action = actor.arrival
    # The actor's own reason when it gives one (a capacity cleanup, an owner's delete):
    # it knows better than the records why it acted.
    reason = actor.reason or _derived_reason(action, previous, updated)
    change = Change(action=action, actor=actor.name, at=at, reason=reason and reason[:500])
    return updated.model_copy(update={"change": change})


class AuditPlace(_Record):
    tier: TierName
    backend: str
    bucket: str


class AuditEntry(_Record):
    image_id: str = Field(min_length=1, max_length=128)
    # Orders an image's entries: the time, then what makes the entry unique (the
    # write's version, or the duplicate upload).
    seq: str = Field(min_length=1, max_length=200)
    at: Timestamp
    owner: str
    actor: str
    action: ChangeAction
    reason: str | None = None
    before: AuditPlace | None = None
    after: AuditPlace | None = None
    expires_at: Timestamp | None = None


def _place(image: ImageRecord | None) -> AuditPlace | None:
    if image is None or image.location is None or image.tier is None:
        return None
    if image.state not in (ImageState.ACTIVE, ImageState.LOST):
        return None
    location = image.location
    return AuditPlace(tier=image.tier, backend=location.backend.value, bucket=location.bucket)


def _stamp_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_of_change(
    old: ImageRecord | None,
    new: ImageRecord | None,
    *,
    retention_days: int,
) -> AuditEntry | None:
    """The entry a change of one record (as the stream shows it) makes, or None when
    the write made no change the trail records."""
    if new is None:
        # A record removed by the TTL: its deletion (or refusal) is entered already,
        # and the trail outlives it; an entry more would cost for nothing new.
        return None
    change = new.change
    if change is None:
        return None
    return AuditEntry(
        image_id=new.id,
        seq=f"{_stamp_time(change.at)}#{new.version or 0:010d}",
        at=change.at,
        owner=new.owner,
        actor=change.actor,
        action=change.action,
        reason=change.reason,
        before=_place(old),
        after=_place(new),
        expires_at=change.at + timedelta(days=retention_days),
    )


def duplicate_entry(
    image: ImageRecord, upload_key: str, at: datetime, *, retention_days: int
) -> AuditEntry:
    """The entry of a duplicate upload of ``image``, at ``at`` (when ingest found it):
    its ``seq`` ends with the upload's token, which ``entered`` looks for."""
    token = hashlib.sha256(upload_key.encode()).hexdigest()[:16]
    return AuditEntry(
        image_id=image.id,
        seq=f"{_stamp_time(at)}#dup-{token}",
        at=at,
        owner=image.owner,
        actor="ingest",
        action=ChangeAction.DEDUPLICATED,
        reason=f"the same bytes uploaded again ({upload_key[-200:]})",
        before=_place(image),
        after=_place(image),
        expires_at=at + timedelta(days=retention_days),
    )


def entered(log: AuditLog, entry: AuditEntry) -> bool:
    """Whether the image's trail has an entry ending as ``entry``'s ``seq`` does (the
    same duplicate upload, entered by an earlier delivery of its event at another
    time). A query of one image's entries: a duplicate is rare, its history short."""
    suffix = "#" + entry.seq.rpartition("#")[2]
    cursor: str | None = None
    while True:
        page = log.history(entry.image_id, limit=100, cursor=cursor)
        if any(found.seq.endswith(suffix) for found in page.items):
            return True
        if page.cursor is None:
            return False
        cursor = page.cursor


@dataclass(frozen=True)
class AuditQuery:
    """An admin's question: entries from ``since`` to ``until`` (at most
    ``MAX_AUDIT_DAYS`` days apart), of one actor and one action if given."""

    since: datetime
    until: datetime
    actor: str | None = None
    action: ChangeAction | None = None
    image_id: str | None = None  # one photo's entries (any owner's: admins ask)

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise InvalidArgument("since and until must carry a time zone")
        if self.until < self.since:
            raise InvalidArgument("until is before since")
        if (self.until - self.since).days > MAX_AUDIT_DAYS:
            raise InvalidArgument(f"since and until are at most {MAX_AUDIT_DAYS} days apart")

    def fingerprint(self) -> str:
        """What a cursor of this query carries, so a query of other filters refuses
        it. Not the times: a search's ``until`` is "now" by default, and moves
        between its pages (a cursor is a place in the table's order, whatever the
        window)."""
        text = f"{self.actor}|{self.action}|{self.image_id}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def matches(self, entry: AuditEntry) -> bool:
        return (
            self.since <= entry.at <= self.until
            and (self.image_id is None or entry.image_id == self.image_id)
            and (self.actor is None or entry.actor == self.actor)
            and (self.action is None or entry.action is self.action)
        )


# A search spans at most a year (the longest retention an admin would ask about at once).
MAX_AUDIT_DAYS = 366


class AuditLog(ABC):
    """Where entries are kept: one item per entry, keyed by image and ``seq``."""

    @abstractmethod
    def record(self, entry: AuditEntry) -> None:
        """Keep ``entry``; the same entry again changes nothing."""

    @abstractmethod
    def history(self, image_id: str, *, limit: int, cursor: str | None) -> Page[AuditEntry]:
        """An image's entries, oldest first."""

    @abstractmethod
    def search(self, query: AuditQuery, *, limit: int, cursor: str | None) -> Page[AuditEntry]:
        """Entries of every image matching ``query``: a scan, so in no order across
        pages (each page oldest first), a page at most ``limit`` entries (maybe fewer,
        or none, before the last); ``InvalidArgument`` for a cursor of another query."""
