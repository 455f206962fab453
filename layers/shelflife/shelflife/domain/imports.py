"""What ``shelflife import`` takes: a bucket of existing photos (any S3, R2 or B2 bucket
and prefix, keys of any shape) and whose photos they are, read from an event into one
shape with a clear error for anything else. Pure: the service does the reading.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shelflife.domain.budget import parse_seconds
from shelflife.domain.errors import InvalidArgument
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.domain.uploads import PLAIN_ID

# S3's rules (3-63, lower case, digits, dots, hyphens) and B2's (6-50, letters, digits,
# hyphens) in one: whichever provider is asked says if the bucket exists.
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{1,61}[A-Za-z0-9]$")
MAX_PREFIX = 1024
MAX_PATTERN = 200
_RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


@dataclass(frozen=True)
class ImportSource:
    """Where the photos are, whose they are, and how they are kept."""

    backend: BackendName
    bucket: str
    prefix: str = ""
    # Every photo's owner, or the owner for keys the pattern does not match.
    owner: str | None = None
    # A regular expression with an ``owner`` group, searched in each key:
    # ``^users/(?P<owner>[^/]+)/`` takes ``alice`` from ``users/alice/2019/a.jpg``.
    owner_pattern: str | None = None
    # Compressed like an upload (the default), or kept as they are where that shows
    # the same picture without its metadata (``imaging.kept_or_compressed``).
    compress: bool = True

    def owner_of(self, key: str) -> str | None:
        """Whose photo ``key`` is; None when neither the pattern nor ``owner`` says
        (or the pattern finds a name that is not a valid user id)."""
        if self.owner_pattern is not None:
            match = re.search(self.owner_pattern, key)
            if match is not None:
                found = match.group("owner")
                return found if found and PLAIN_ID.match(found) else None
        return self.owner

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend.value,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "owner": self.owner,
            "owner_pattern": self.owner_pattern,
            "compress": self.compress,
        }

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> ImportSource:
        source = event.get("source")
        if not isinstance(source, Mapping):
            raise InvalidArgument(
                "an import needs source: {backend, bucket, prefix} (the bucket to import)"
            )
        try:
            backend = BackendName(str(source.get("backend")))
        except ValueError:
            raise InvalidArgument(
                f"source.backend must be one of {', '.join(BackendName)}, "
                f"got {source.get('backend')!r}"
            ) from None
        bucket = source.get("bucket")
        if not isinstance(bucket, str) or not _BUCKET.match(bucket):
            raise InvalidArgument(f"source.bucket must be a bucket name, got {bucket!r}")
        prefix = source.get("prefix") or ""
        if not isinstance(prefix, str) or len(prefix) > MAX_PREFIX:
            raise InvalidArgument(f"source.prefix must be a key prefix, got {prefix!r}")
        owner = event.get("owner")
        if owner is not None and (not isinstance(owner, str) or not PLAIN_ID.match(owner)):
            raise InvalidArgument(
                f"owner must be a user id (letters, digits, . _ @ + -), got {owner!r}"
            )
        pattern = event.get("owner_pattern")
        if pattern is not None:
            _check_pattern(pattern)
        if owner is None and pattern is None:
            raise InvalidArgument(
                "whose photos are they? give owner (one user), owner_pattern (a regular "
                "expression with an (?P<owner>...) group, searched in each key), or both"
            )
        compressed = event.get("compress", True)
        if not isinstance(compressed, bool):
            raise InvalidArgument(f"compress must be true or false, got {compressed!r}")
        return cls(backend, bucket, prefix, owner, pattern, compressed)

    @classmethod
    def of(cls, details: Mapping[str, Any]) -> ImportSource:
        """From a run record's ``as_dict``."""
        return cls(
            BackendName(details["backend"]),
            details["bucket"],
            details.get("prefix") or "",
            details.get("owner"),
            details.get("owner_pattern"),
            bool(details.get("compress", True)),
        )


def _check_pattern(pattern: object) -> None:
    if not isinstance(pattern, str) or not 0 < len(pattern) <= MAX_PATTERN:
        raise InvalidArgument(
            f"owner_pattern must be a regular expression of 1 to {MAX_PATTERN} characters"
        )
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise InvalidArgument(f"owner_pattern is not a regular expression: {e}") from None
    if "owner" not in compiled.groupindex:
        raise InvalidArgument(
            "owner_pattern needs a group named owner, as in ^users/(?P<owner>[^/]+)/"
        )


def import_request(event: Mapping[str, Any]) -> dict[str, Any]:
    """A new import (a dry run unless ``dry_run`` is false) or the continuation of
    ``run_id``, within ``max_seconds``."""
    request: dict[str, Any] = {"max_seconds": parse_seconds(event.get("max_seconds"))}
    asked = event.get("requested_by")
    if asked is not None and (not isinstance(asked, str) or not 0 < len(asked) <= 200):
        raise InvalidArgument(f"requested_by must be who asked, got {asked!r}")
    request["requested_by"] = asked
    run_id = event.get("run_id")
    if run_id is not None:
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise InvalidArgument(f"not a run id: {run_id!r}")
        request["run_id"] = run_id
        return request
    dry_run = event.get("dry_run", True)
    if not isinstance(dry_run, bool):
        raise InvalidArgument(f"dry_run must be true or false, got {dry_run!r}")
    request["dry_run"] = dry_run
    request["source"] = ImportSource.parse(event)
    return request


def age_of(last_modified: datetime, taken_at: str | None, now: datetime) -> datetime:
    """When an imported photo came to be, for the policy's clocks: when it was taken
    (the camera's clock, read as UTC: a zone off is hours, the policy counts days) if
    that is earlier than when its object was written, else the latter; never later
    than now."""
    when = last_modified
    if taken_at:
        try:
            taken = datetime.fromisoformat(taken_at).replace(tzinfo=last_modified.tzinfo)
        except ValueError:
            taken = None
        if taken is not None and taken.year >= 1990 and taken < when:
            when = taken
    return min(when, now)


def import_tier(since: datetime, now: datetime, settings: Settings) -> TierName:
    """Where the policy has a photo of that age: HOT while it would not yet be idle
    long enough to archive, COLD after. Never TEMP (nothing imported is a draft), and
    never due for deletion on arrival: a photo's COLD clock starts when it arrives."""
    idle = timedelta(days=settings.hot_idle_days)
    return TierName.HOT if now - since < idle else TierName.COLD
