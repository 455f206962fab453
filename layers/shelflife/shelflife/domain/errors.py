"""The package's own exceptions.

Provider errors (botocore ``ClientError``, b2sdk exceptions, pynamodb errors) stop at the
adapter that called the provider: it raises one of these ``from`` the original, so
callers (handlers, services) never import a provider's exception types. Handlers map
these to HTTP statuses or to retry decisions; ``retryable`` says which is which.
"""

from __future__ import annotations

from typing import ClassVar


class ShelflifeError(Exception):
    """Base of every error shelflife raises on purpose."""

    retryable: ClassVar[bool] = False


class ConfigurationError(ShelflifeError):
    """A setting is missing or invalid; the message names the variable."""


class InvalidArgument(ShelflifeError, ValueError):
    """A caller passed a value the operation cannot accept (bad key, bad expiry...)."""


class Conflict(ShelflifeError):
    """The change lost a race or contradicts what is stored (a conditional write failed,
    a bucket name is taken by someone else)."""


class NoRoom(Conflict):
    """A write that adds bytes to a bucket would take it past the limit it was chosen
    under: concurrent placements filled it between the choice and the write. Nothing
    was written; the caller places again."""

    def __init__(self, message: str, *, bucket: str) -> None:
        super().__init__(message)
        self.bucket = bucket


class RecordNotFound(ShelflifeError):
    """No table record under that key."""


class NotAuthenticated(ShelflifeError):
    """The request carries no identity (no token, or a token without a subject)."""


class Forbidden(ShelflifeError):
    """The caller is known and may not do this (an admin route, a quota reached)."""

    def __init__(self, message: str, *, code: str = "forbidden") -> None:
        super().__init__(message)
        self.code = code


class TooLarge(InvalidArgument):
    """A declared size over the limit (an upload over the maximum)."""


class OperationFailed(ShelflifeError):
    """A function the API invoked ran and failed; the message is its error."""


class Unavailable(ShelflifeError):
    """What the request needs is not configured or not reachable here (an admin
    operation without its function); the message says which."""

    retryable = True


class RejectedImage(ShelflifeError):
    """An upload that will not be processed. ``reason`` is for humans and is recorded;
    ``code`` is one of a few stable words, for metrics and for clients to branch on."""

    def __init__(self, reason: str, *, code: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class NoBucketAvailable(ShelflifeError):
    """Every bucket of the tier is full, draining or gone; the capacity function opens
    an overflow bucket, so a later retry succeeds."""

    retryable = True


class StorageError(ShelflifeError):
    """A storage backend refused or failed an operation."""

    def __init__(
        self, message: str, *, backend: str = "", bucket: str = "", key: str | None = None
    ) -> None:
        where = "/".join(part for part in (bucket, key or "") if part)
        prefix = f"{backend}: " if backend else ""
        super().__init__(f"{prefix}{message}" + (f" ({where})" if where else ""))
        self.backend = backend
        self.bucket = bucket
        self.key = key


class ObjectNotFound(StorageError):
    """The object does not exist in the bucket."""


class BucketNotFound(StorageError):
    """The bucket does not exist (or is not visible to these credentials)."""


class BucketFull(StorageError):
    """The provider refuses new bytes in this bucket (B2's storage cap)."""


class BucketNameTaken(StorageError, Conflict):
    """The bucket name belongs to another account."""


class PermissionDenied(StorageError):
    """The credentials may not do this, or a signed URL is expired or forged."""


class ChecksumMismatch(StorageError):
    """The bytes read back do not match the SHA-256 recorded when they were written."""


class Throttled(StorageError):
    """The provider asked us to slow down; try again later."""

    retryable = True


class BackendUnavailable(StorageError):
    """The provider failed (5xx, timeout, connection); try again later."""

    retryable = True


class RecordsExpired(ShelflifeError):
    """Stream records asked for are no longer in the stream (it keeps them 24 hours)."""
