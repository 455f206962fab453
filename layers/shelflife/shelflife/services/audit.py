"""The audit trail's service: the audit function's work (an entry per stamped change
the table's stream delivers) and reading entries back for owners and admins."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shelflife.domain.audit import AuditEntry, AuditLog, AuditQuery, entry_of_change
from shelflife.domain.auth import Caller
from shelflife.domain.clock import utc_now
from shelflife.domain.errors import InvalidArgument, RecordNotFound
from shelflife.domain.records import Page, StreamChange
from shelflife.domain.repository import MAX_PAGE_SIZE
from shelflife.domain.settings import Settings

logger = logging.getLogger(__name__)


class AuditService:
    def __init__(
        self,
        settings: Settings,
        log: AuditLog,
        *,
        read_change: Callable[[Mapping[str, Any]], StreamChange] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.log = log
        self.read_change = read_change
        self.clock = clock

    # ---- writing (the audit function) ------------------------------------------------

    def process_record(self, record: Mapping[str, Any]) -> AuditEntry | None:
        """A stream record as Lambda delivers it: its entry, written (the same record
        again writes the same item), or None when the change is not one the trail
        records, or the record is not a stream record of this table (nothing to
        enter; retrying it would hold up the shard)."""
        assert self.read_change is not None, "the audit function reads the table's stream"
        try:
            change = self.read_change(record)
        except InvalidArgument as e:
            logger.warning("not an image change: %s", e)
            return None
        return self.process(change)

    def process(self, change: StreamChange) -> AuditEntry | None:
        entry = entry_of_change(
            change.old, change.new, retention_days=self.settings.audit_retention_days
        )
        if entry is not None:
            self.log.record(entry)
        return entry

    # ---- reading ---------------------------------------------------------------------

    def history(
        self, caller: Caller, image_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[AuditEntry]:
        """A photo's entries, oldest first: its owner's to read, as every photo route
        (an admin reads anyone's through ``search``). A photo with no entries, or
        another's, is not found."""
        _check_limit(limit)
        page = self.log.history(image_id, limit=limit, cursor=cursor)
        if not page.items and cursor is None:
            raise RecordNotFound(f"no history for photo {image_id!r}")
        if any(entry.owner != caller.user_id for entry in page.items):
            raise RecordNotFound(f"no history for photo {image_id!r}")
        return page

    def search(
        self, caller: Caller, query: AuditQuery, *, limit: int = 100, cursor: str | None = None
    ) -> Page[AuditEntry]:
        caller.require_admin()
        _check_limit(limit)
        if query.image_id is None:
            return self.log.search(query, limit=limit, cursor=cursor)
        # One photo's: its own entries (a query of its partition), filtered.
        page = self.log.history(query.image_id, limit=limit, cursor=cursor)
        return Page(items=[e for e in page.items if query.matches(e)], cursor=page.cursor)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"limit must be 1-{MAX_PAGE_SIZE}, got {limit}")
