"""The storage interface every backend implements.

Public methods are concrete and hold the shared logic (argument checks, checksums,
pagination loops, verification); each backend implements only the underscored
primitives. Primitives raise the package's errors (``shelflife.domain.errors``), never the
provider's.
"""

from __future__ import annotations

import hashlib
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from shelflife.domain.errors import ChecksumMismatch, InvalidArgument, ObjectNotFound

SHA256_METADATA_KEY = "sha256"
MAX_PAGE_SIZE = 1000
# What a streamed read hands over at a time.
CHUNK_SIZE = 1024 * 1024
# SigV4 presigned URLs are valid for at most 7 days; B2 download authorizations too.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
DEFAULT_PRESIGN_SECONDS = 15 * 60
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    last_modified: datetime
    # None where a listing does not say (S3's ListObjectsV2).
    content_type: str | None = None
    # SHA-256 (hex) of the bytes as written by ``put``; None for objects written by
    # something else (the reconciler treats those as unverified).
    sha256: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # The storage class it was written with, where the provider has several and says
    # (S3 omits its default, STANDARD); None otherwise.
    storage_class: str | None = None


@dataclass(frozen=True)
class StoredObject:
    info: ObjectInfo
    data: bytes


@dataclass(frozen=True)
class ObjectPage:
    objects: list[ObjectInfo]
    # Pass back to ``list_page`` for the next page; None when this was the last.
    next_cursor: str | None


@dataclass(frozen=True)
class PresignedPost:
    """An HTML form upload: post ``fields`` and then the file to ``url``."""

    url: str
    fields: dict[str, str]


@dataclass(frozen=True)
class BucketPolicy:
    """What every bucket of a tier gets when it is created."""

    tier: str
    cors_origins: tuple[str, ...] = ()
    abort_incomplete_uploads_after_days: int = 1
    tags: Mapping[str, str] = field(default_factory=dict)

    def all_tags(self) -> dict[str, str]:
        return {"shelflife:tier": self.tier, **self.tags}


@dataclass(frozen=True)
class BucketDescription:
    """A bucket's settings as read back from the provider."""

    name: str
    private: bool
    encrypted: bool
    # None where the backend has no such setting (B2, R2: TLS is the only transport).
    tls_only: bool | None
    cors_origins: tuple[str, ...]
    abort_incomplete_uploads_after_days: int | None
    tags: Mapping[str, str]


@dataclass(frozen=True)
class BucketUsage:
    bucket: str
    objects: int
    bytes: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ChunkReader(io.RawIOBase):
    """A readable, non-seekable file over an iterator of chunks, for clients that take
    a file to upload from."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class StorageBackend(ABC):
    """Objects in buckets, on one provider account."""

    name: ClassVar[str]
    # Whether ``create_bucket`` can tag buckets (R2 has no bucket tagging).
    supports_bucket_tags: ClassVar[bool] = True
    # Whether ``from_settings`` needs the R2/B2 credentials (read from SSM Parameter
    # Store), so a function using S3 only never fetches them.
    needs_credentials: ClassVar[bool] = False
    # Whether the provider refuses a write whose bytes do not hash to the SHA-256 sent
    # with it (S3 and R2 do; B2 checks SHA-1 of what it received only). Only then can
    # ``put_stream`` stream: the bytes are verified before the object exists.
    verifies_sha256_on_write: ClassVar[bool] = False

    # ---- public operations -------------------------------------------------------

    def put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
    ) -> ObjectInfo:
        """Store ``data`` at ``bucket/key`` and record its SHA-256, so every later read
        can be verified. Overwrites an existing object. ``storage_class``: the tier's
        (``Settings.storage_class``); ignored by providers with one class."""
        self._check_location(bucket, key)
        digest = sha256_hex(data)
        meta = {**(metadata or {}), SHA256_METADATA_KEY: digest}
        return self._put(
            bucket,
            key,
            data,
            content_type=content_type,
            metadata=meta,
            sha256=digest,
            storage_class=storage_class,
        )

    def get(self, bucket: str, key: str) -> StoredObject:
        """Read an object; raises ``ChecksumMismatch`` if the bytes differ from what was
        written."""
        self._check_location(bucket, key)
        stored = self._get(bucket, key)
        if stored.info.sha256 is not None and sha256_hex(stored.data) != stored.info.sha256:
            raise ChecksumMismatch(
                "stored bytes do not match their recorded sha256",
                backend=self.name,
                bucket=bucket,
                key=key,
            )
        return stored

    def open(self, bucket: str, key: str) -> tuple[ObjectInfo, Iterator[bytes]]:
        """An object's info and its bytes in chunks, read as they are consumed (the
        caller checks them: see ``put_stream``)."""
        self._check_location(bucket, key)
        return self._open(bucket, key)

    def put_stream(
        self,
        bucket: str,
        key: str,
        chunks: Iterable[bytes],
        *,
        size: int,
        sha256: str,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
    ) -> None:
        """Store ``size`` bytes arriving as ``chunks`` that must hash to ``sha256``;
        ``ChecksumMismatch`` (and no object) if they do not. Streamed where the provider
        verifies the SHA-256 itself; elsewhere gathered and checked before the write."""
        self._check_location(bucket, key)
        meta = {**(metadata or {}), SHA256_METADATA_KEY: sha256}
        if self.verifies_sha256_on_write:
            self._put_stream(
                bucket,
                key,
                chunks,
                size=size,
                sha256=sha256,
                content_type=content_type,
                metadata=meta,
                storage_class=storage_class,
            )
            return
        data = b"".join(chunks)
        if len(data) != size or sha256_hex(data) != sha256:
            raise ChecksumMismatch(
                "the bytes to store do not match their expected size and SHA-256",
                backend=self.name,
                bucket=bucket,
                key=key,
            )
        self._put(
            bucket,
            key,
            data,
            content_type=content_type,
            metadata=meta,
            sha256=sha256,
            storage_class=storage_class,
        )

    def head(self, bucket: str, key: str) -> ObjectInfo:
        self._check_location(bucket, key)
        return self._head(bucket, key)

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.head(bucket, key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, bucket: str, key: str) -> None:
        """Delete the object (on versioned providers, every version). Deleting what is
        not there is not an error."""
        self._check_location(bucket, key)
        self._delete(bucket, key)

    def list_page(
        self,
        bucket: str,
        *,
        prefix: str = "",
        cursor: str | None = None,
        limit: int = MAX_PAGE_SIZE,
    ) -> ObjectPage:
        """One page of objects in key order."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        self._check_bucket(bucket)
        return self._list_page(bucket, prefix=prefix, cursor=cursor, limit=limit)

    def iter_objects(self, bucket: str, *, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, page after page."""
        cursor: str | None = None
        while True:
            page = self.list_page(bucket, prefix=prefix, cursor=cursor)
            yield from page.objects
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        storage_class: str | None = None,
    ) -> ObjectInfo:
        """Copy within this backend, keeping content type and metadata (checksum
        included); the copy is in ``storage_class`` (see ``put``)."""
        self._check_location(src_bucket, src_key)
        self._check_location(dst_bucket, dst_key)
        return self._copy(src_bucket, src_key, dst_bucket, dst_key, storage_class=storage_class)

    def presigned_get_url(
        self, bucket: str, key: str, *, expires_in: int = DEFAULT_PRESIGN_SECONDS
    ) -> str:
        """A URL that lets anyone holding it read the object until it expires."""
        self._check_location(bucket, key)
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise InvalidArgument(
                f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds, got {expires_in}"
            )
        return self._presigned_get_url(bucket, key, expires_in)

    def create_bucket(self, name: str, policy: BucketPolicy) -> BucketDescription:
        """Create a private bucket with the tier's policies; creating a bucket this
        account already owns applies the policies again and succeeds."""
        self._check_bucket(name)
        self._create_bucket(name, policy)
        return self.describe_bucket(name)

    def describe_bucket(self, name: str) -> BucketDescription:
        self._check_bucket(name)
        return self._describe_bucket(name)

    @abstractmethod
    def bucket_exists(self, name: str) -> bool: ...

    def usage(self, bucket: str) -> BucketUsage:
        """Objects and bytes by listing the whole bucket: for reconciliation only; the
        capacity check reads the counters on the bucket records instead."""
        objects = total = 0
        for info in self.iter_objects(bucket):
            objects += 1
            total += info.size
        return BucketUsage(bucket=bucket, objects=objects, bytes=total)

    # ---- primitives --------------------------------------------------------------

    @abstractmethod
    def _put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        sha256: str,
        storage_class: str | None = None,
    ) -> ObjectInfo: ...

    @abstractmethod
    def _get(self, bucket: str, key: str) -> StoredObject: ...

    @abstractmethod
    def _head(self, bucket: str, key: str) -> ObjectInfo: ...

    @abstractmethod
    def _delete(self, bucket: str, key: str) -> None: ...

    @abstractmethod
    def _list_page(
        self, bucket: str, *, prefix: str, cursor: str | None, limit: int
    ) -> ObjectPage: ...

    def _open(self, bucket: str, key: str) -> tuple[ObjectInfo, Iterator[bytes]]:
        # Backends that can read in chunks override this.
        stored = self._get(bucket, key)
        return stored.info, iter([stored.data])

    def _put_stream(
        self,
        bucket: str,
        key: str,
        chunks: Iterable[bytes],
        *,
        size: int,
        sha256: str,
        content_type: str,
        metadata: Mapping[str, str],
        storage_class: str | None = None,
    ) -> None:
        raise NotImplementedError(f"{self.name} does not verify SHA-256 on write")

    def _copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        storage_class: str | None = None,
    ) -> ObjectInfo:
        # Backends with a server-side copy override this.
        source = self.get(src_bucket, src_key)
        return self.put(
            dst_bucket,
            dst_key,
            source.data,
            content_type=source.info.content_type or "application/octet-stream",
            metadata=source.info.metadata,
            storage_class=storage_class,
        )

    @abstractmethod
    def _presigned_get_url(self, bucket: str, key: str, expires_in: int) -> str: ...

    @abstractmethod
    def _create_bucket(self, name: str, policy: BucketPolicy) -> None: ...

    @abstractmethod
    def _describe_bucket(self, name: str) -> BucketDescription: ...

    # ---- argument checks ---------------------------------------------------------

    def _check_bucket(self, bucket: str) -> None:
        if not _BUCKET_NAME.match(bucket):
            raise InvalidArgument(
                f"invalid bucket name {bucket!r}: 3-63 lowercase letters, digits and hyphens"
            )

    def _check_location(self, bucket: str, key: str) -> None:
        self._check_bucket(bucket)
        if not key or len(key.encode()) > 1024:
            raise InvalidArgument(f"invalid object key {key!r}: 1-1024 bytes of UTF-8")
        if key.startswith("/") or any(ord(ch) < 32 for ch in key):
            raise InvalidArgument(
                f"invalid object key {key!r}: no leading slash, no control characters"
            )


class Backends(Protocol):
    """The storage backends a service reaches by name (``s3``, ``r2``, ``b2``, ``memory``)
    or by tier; ``shelflife.adapters.backends.ProviderBackends`` builds the real ones."""

    def get(self, name: str) -> StorageBackend: ...

    def for_tier(self, tier: str) -> StorageBackend: ...


@runtime_checkable
class UploadBucket(Protocol):
    """A backend that can hand a browser a presigned POST form (S3: the upload bucket)."""

    def presigned_post(
        self,
        bucket: str,
        key: str,
        *,
        max_bytes: int,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        expires_in: int = DEFAULT_PRESIGN_SECONDS,
    ) -> PresignedPost: ...
