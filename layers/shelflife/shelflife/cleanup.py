"""Deleting the objects a record change let go of: the core of the cleanup function,
which the table's stream drives (NEW_AND_OLD_IMAGES).

Objects are deleted in exactly two places (DESIGN.md, invariant 2); this is one. It
deletes what the old record referenced and the new one does not
(``records.released_objects``), after reading the record again: a later change may
point at the same key once more (an image restored to the bucket it was archived from,
a soft-deleted image uploaded again), and that object must stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shelflife.errors import BucketNotFound
from shelflife.table.records import ImageRecord, Location, released_objects
from shelflife.table.repository import Repository

if TYPE_CHECKING:
    from shelflife.backends import Backends


class CleanupService:
    def __init__(self, repository: Repository, backends: Backends) -> None:
        self.repository = repository
        self.backends = backends

    def release(self, old: ImageRecord | None, new: ImageRecord | None) -> list[Location]:
        """Delete what the change from ``old`` to ``new`` released and the record, as
        it is now, does not reference; the locations deleted. Safe to repeat."""
        released = released_objects(old, new)
        if not released:
            return []
        image_id = (old or new).id  # type: ignore[union-attr]
        current = self.repository.find_image(image_id)
        kept = current.referenced() if current is not None else frozenset()
        deleted = []
        for place in sorted(released - kept, key=lambda p: (p.backend, p.bucket, p.key)):
            try:
                self.backends.get(place.backend.value).delete(place.bucket, place.key)
            except BucketNotFound:
                continue  # the bucket is gone, and the object with it
            deleted.append(place)
        return deleted
