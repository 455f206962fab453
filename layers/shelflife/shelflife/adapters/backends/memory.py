"""An in-process backend for unit tests and the local stack.

It keeps the real backends' behaviour where callers can see it: buckets must exist,
names are checked, listing is paginated in key order, presigned URLs expire and are
signed, so code tested against it behaves the same on S3, R2 and B2.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, Self
from urllib.parse import parse_qs, quote, unquote, urlsplit

from shelflife.domain.errors import (
    BucketNameTaken,
    BucketNotFound,
    InvalidArgument,
    ObjectNotFound,
    PermissionDenied,
)
from shelflife.domain.storage import (
    BucketDescription,
    BucketPolicy,
    ObjectInfo,
    ObjectPage,
    StorageBackend,
    StoredObject,
)

if TYPE_CHECKING:
    from shelflife.adapters.credentials import Credentials
    from shelflife.domain.settings import Settings


@dataclass
class _Bucket:
    description: BucketDescription
    objects: dict[str, StoredObject] = field(default_factory=dict)


class MemoryBackend(StorageBackend):
    name: ClassVar[str] = "memory"

    def __init__(
        self, *, clock: Callable[[], float] = time.time, foreign_buckets: Collection[str] = ()
    ) -> None:
        self._buckets: dict[str, _Bucket] = {}
        # Names "another account" owns, as on providers with global bucket names.
        self.foreign_buckets = set(foreign_buckets)
        self._lock = threading.Lock()
        self._clock = clock
        self._signing_key = secrets.token_bytes(32)

    @classmethod
    def from_settings(cls, settings: Settings, credentials: Credentials | None = None) -> Self:
        return cls()

    def _objects(self, bucket: str) -> dict[str, StoredObject]:
        try:
            return self._buckets[bucket].objects
        except KeyError:
            raise BucketNotFound("no such bucket", backend=self.name, bucket=bucket) from None

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
    ) -> ObjectInfo:
        info = ObjectInfo(
            bucket=bucket,
            key=key,
            size=len(data),
            content_type=content_type,
            last_modified=datetime.fromtimestamp(self._clock(), tz=UTC),
            sha256=sha256,
            metadata=dict(metadata),
            storage_class=storage_class,
        )
        with self._lock:
            self._objects(bucket)[key] = StoredObject(info=info, data=bytes(data))
        return info

    def _get(self, bucket: str, key: str) -> StoredObject:
        with self._lock:
            try:
                return self._objects(bucket)[key]
            except KeyError:
                raise ObjectNotFound(
                    "no such object", backend=self.name, bucket=bucket, key=key
                ) from None

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        return self._get(bucket, key).info

    def _delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self._objects(bucket).pop(key, None)

    def _list_page(self, bucket: str, *, prefix: str, cursor: str | None, limit: int) -> ObjectPage:
        with self._lock:
            keys = sorted(
                key
                for key in self._objects(bucket)
                if key.startswith(prefix) and (cursor is None or key >= cursor)
            )
            objects = [self._objects(bucket)[key].info for key in keys[:limit]]
        return ObjectPage(objects=objects, next_cursor=keys[limit] if len(keys) > limit else None)

    def _copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        storage_class: str | None = None,
    ) -> ObjectInfo:
        source = self._get(src_bucket, src_key)
        info = replace(
            source.info,
            bucket=dst_bucket,
            key=dst_key,
            last_modified=datetime.fromtimestamp(self._clock(), tz=UTC),
            storage_class=storage_class,
        )
        with self._lock:
            self._objects(dst_bucket)[dst_key] = StoredObject(info=info, data=source.data)
        return info

    # ---- presigned URLs ------------------------------------------------------------

    def _presigned_get_url(self, bucket: str, key: str, expires_in: int) -> str:
        expires = int(self._clock()) + expires_in
        return (
            f"memory://{bucket}/{quote(key)}?expires={expires}"
            f"&signature={self._signature(bucket, key, expires)}"
        )

    def open_presigned_url(self, url: str) -> bytes:
        """What fetching a presigned URL would return: the bytes, or PermissionDenied
        for an expired or forged URL."""
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
        try:
            expires = int(query["expires"][0])
            signature = query["signature"][0]
        except (KeyError, ValueError) as e:
            raise InvalidArgument(f"not a presigned memory URL: {url}") from e
        if not hmac.compare_digest(signature, self._signature(bucket, key, expires)):
            raise PermissionDenied("bad signature", backend=self.name, bucket=bucket, key=key)
        if self._clock() > expires:
            raise PermissionDenied("URL expired", backend=self.name, bucket=bucket, key=key)
        return self.get(bucket, key).data

    def _signature(self, bucket: str, key: str, expires: int) -> str:
        message = f"{bucket}\n{key}\n{expires}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    # ---- buckets -------------------------------------------------------------------

    def bucket_exists(self, name: str) -> bool:
        with self._lock:
            return name in self._buckets

    def _create_bucket(self, name: str, policy: BucketPolicy) -> None:
        description = BucketDescription(
            name=name,
            private=True,
            encrypted=True,
            tls_only=None,
            cors_origins=tuple(policy.cors_origins),
            abort_incomplete_uploads_after_days=policy.abort_incomplete_uploads_after_days,
            tags=policy.all_tags(),
        )
        if name in self.foreign_buckets:
            raise BucketNameTaken(
                "bucket name belongs to another account", backend=self.name, bucket=name
            )
        with self._lock:
            existing = self._buckets.get(name)
            if existing is None:
                self._buckets[name] = _Bucket(description=description)
            else:
                existing.description = description

    def _describe_bucket(self, name: str) -> BucketDescription:
        with self._lock:
            try:
                return self._buckets[name].description
            except KeyError:
                raise BucketNotFound("no such bucket", backend=self.name, bucket=name) from None
