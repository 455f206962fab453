"""Backblaze B2 through b2sdk's native API.

B2 keeps versions of every file name: ``delete`` removes every version, ``hide`` only
hides the name (the bucket's lifecycle rule then removes hidden versions after a day).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import quote

from b2sdk.v2 import (
    B2Api,
    B2HttpApiConfig,
    Bucket,
    BucketSimulator,
    EncryptionAlgorithm,
    EncryptionMode,
    EncryptionSetting,
    InMemoryAccountInfo,
    InMemoryCache,
    RawSimulator,
)
from b2sdk.v2.exception import (
    AccessDenied,
    B2Error,
    BucketIdNotFound,
    DuplicateBucketName,
    FileNotPresent,
    NonExistentBucket,
    StorageCapExceeded,
    TooManyRequests,
    TransientErrorMixin,
    Unauthorized,
)

from shelflife.adapters.credentials import Credentials
from shelflife.domain.errors import (
    BackendUnavailable,
    BucketFull,
    BucketNameTaken,
    BucketNotFound,
    ObjectNotFound,
    PermissionDenied,
    StorageError,
    Throttled,
)
from shelflife.domain.storage import (
    CHUNK_SIZE,
    SHA256_METADATA_KEY,
    BucketDescription,
    BucketPolicy,
    ObjectInfo,
    ObjectPage,
    StorageBackend,
    StoredObject,
)

if TYPE_CHECKING:
    from shelflife.domain.settings import Settings

_PRIVATE = "allPrivate"
_SSE_B2 = EncryptionSetting(mode=EncryptionMode.SSE_B2, algorithm=EncryptionAlgorithm.AES256)
_CORS_OPERATIONS = ["b2_download_file_by_name", "s3_get", "s3_head", "s3_put"]
# Hidden versions are removed by B2 itself after this many days; that is the only
# deletion B2 does on its own, and only of names shelflife hid.
_DAYS_FROM_HIDING_TO_DELETING = 1


class _B2LimitsBucketSimulator(BucketSimulator):  # type: ignore[misc]
    MAX_SIMPLE_COPY_SIZE = 5 * 1000**3  # B2 copies up to 5 GB in one call


class _B2LimitsSimulator(RawSimulator):  # type: ignore[misc]
    """b2sdk's simulator with B2's real limits instead of its test-sized ones (200-byte
    parts), so code that runs on it makes the same calls as on B2."""

    BUCKET_SIMULATOR_CLASS = _B2LimitsBucketSimulator
    MIN_PART_SIZE = 5 * 1000**2

    def copy_file(
        self,
        api_url: str,
        account_auth_token: str,
        source_file_id: str,
        *args: Any,
        destination_bucket_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """b2sdk 2.13's simulator does not record which bucket a copy's new file is
        in, so a later copy of that copy (back into the first bucket: a COLD photo
        moved to an overflow bucket and back) raised KeyError. B2 itself knows."""
        result = super().copy_file(
            api_url,
            account_auth_token,
            source_file_id,
            *args,
            destination_bucket_id=destination_bucket_id,
            **kwargs,
        )
        source_bucket = self.file_id_to_bucket_id[source_file_id]
        self.file_id_to_bucket_id[result["fileId"]] = destination_bucket_id or source_bucket
        return result


def _ms_to_datetime(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


_SHARED: dict[type, B2Backend] = {}
_SHARED_LOCK = threading.Lock()


class B2Backend(StorageBackend):
    name: ClassVar[str] = "b2"
    needs_credentials: ClassVar[bool] = True

    def __init__(
        self,
        api: B2Api | None = None,
        *,
        application_key_id: str | None = None,
        application_key: str | None = None,
        realm: str = "production",
    ) -> None:
        if api is None:
            api = B2Api(InMemoryAccountInfo(), cache=InMemoryCache())
            api.authorize_account(realm, application_key_id, application_key)
        self._api = api
        # Where downloads are served in place of the account's download URL: None on
        # B2; on the local stack, its gateway, which serves the simulator's files
        # (b2sdk's simulator hands out an example.com host nothing answers on).
        self.download_base: str | None = None

    @classmethod
    def simulated(cls) -> Self:
        """A backend on b2sdk's in-memory simulator: for tests and the local stack."""
        api = B2Api(
            InMemoryAccountInfo(),
            cache=InMemoryCache(),
            api_config=B2HttpApiConfig(_raw_api_class=_B2LimitsSimulator),
        )
        account_id, master_key = api.session.raw_api.create_account()
        api.authorize_account("production", account_id, master_key)
        return cls(api)

    @classmethod
    def shared_simulator(cls) -> Self:
        """The process's one simulated account (every function of the local stack
        sees the same buckets)."""
        with _SHARED_LOCK:
            if cls not in _SHARED:
                _SHARED[cls] = cls.simulated()
            shared: Self = _SHARED[cls]  # type: ignore[assignment]
            return shared

    @classmethod
    def drop_shared_simulator(cls) -> None:
        """Forget the shared simulated account (a new local stack starts empty)."""
        with _SHARED_LOCK:
            _SHARED.pop(cls, None)

    @classmethod
    def from_settings(cls, settings: Settings, credentials: Credentials | None = None) -> Self:
        if settings.b2_simulated:
            return cls.shared_simulator()
        key_id, key = (credentials or Credentials()).require_b2()
        return cls(application_key_id=key_id, application_key=key)

    @property
    def api(self) -> B2Api:
        return self._api

    # ---- objects -----------------------------------------------------------------

    def _put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        sha256: str,
        storage_class: str | None = None,  # B2 has one class
    ) -> ObjectInfo:
        with self._translated(bucket, key):
            version = self._bucket(bucket).upload_bytes(
                data, key, content_type=content_type, file_info=dict(metadata)
            )
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=version.size,
            content_type=version.content_type,
            last_modified=_ms_to_datetime(version.upload_timestamp),
            sha256=sha256,
            metadata=dict(version.file_info),
        )

    def _get(self, bucket: str, key: str) -> StoredObject:
        buffer = io.BytesIO()
        with self._translated(bucket, key):
            downloaded = self._bucket(bucket).download_file_by_name(key)
            downloaded.save(buffer)
        info = self._version_info(bucket, key, downloaded.download_version)
        return StoredObject(info=info, data=buffer.getvalue())

    def _open(self, bucket: str, key: str) -> tuple[ObjectInfo, Iterator[bytes]]:
        with self._translated(bucket, key):
            downloaded = self._bucket(bucket).download_file_by_name(key)
        info = self._version_info(bucket, key, downloaded.download_version)

        def chunks() -> Iterator[bytes]:
            with self._translated(bucket, key), downloaded.response as response:
                yield from response.iter_content(chunk_size=CHUNK_SIZE)

        return info, chunks()

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        with self._translated(bucket, key):
            version = self._bucket(bucket).get_file_info_by_name(key)
        return self._version_info(bucket, key, version)

    def _delete(self, bucket: str, key: str) -> None:
        with self._translated(bucket, key):
            for version in list(self._bucket(bucket).list_file_versions(key)):
                if version.file_name == key:
                    self._api.delete_file_version(version.id_, version.file_name)

    def hide(self, bucket: str, key: str) -> None:
        """Hide the name: reads answer not-found, the versions stay until the bucket's
        lifecycle rule removes them."""
        self._check_location(bucket, key)
        with self._translated(bucket, key):
            self._bucket(bucket).hide_file(key)

    def _list_page(self, bucket: str, *, prefix: str, cursor: str | None, limit: int) -> ObjectPage:
        with self._translated(bucket):
            response = self._api.session.list_file_names(
                self._bucket(bucket).id_,
                start_file_name=cursor,
                max_file_count=limit,
                prefix=prefix or None,
            )
        objects = [
            self._info(
                bucket,
                item["fileName"],
                item["contentLength"],
                item["contentType"],
                item["uploadTimestamp"],
                item.get("fileInfo") or {},
            )
            for item in response["files"]
            if item.get("action", "upload") == "upload"
        ]
        return ObjectPage(objects=objects, next_cursor=response.get("nextFileName"))

    def _copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        storage_class: str | None = None,  # B2 has one class
    ) -> ObjectInfo:
        with self._translated(src_bucket, src_key):
            source = self._bucket(src_bucket).get_file_info_by_name(src_key)
            # Server-side copy into the destination bucket; b2sdk switches to part-wise
            # copying for large files, which needs the source's type and info given.
            self._bucket(dst_bucket).copy(
                source.id_,
                dst_key,
                length=source.size,
                source_content_type=source.content_type,
                source_file_info=source.file_info,
            )
        return self._head(dst_bucket, dst_key)

    def _presigned_get_url(self, bucket: str, key: str, expires_in: int) -> str:
        with self._translated(bucket, key):
            target = self._bucket(bucket)
            token = target.get_download_authorization(key, expires_in)
            url = target.get_download_url(key)
        if self.download_base is not None:
            url = self.download_base + url.removeprefix(self._api.account_info.get_download_url())
        return f"{url}?Authorization={quote(token, safe='')}"

    def _version_info(self, bucket: str, key: str, version: Any) -> ObjectInfo:
        """Info from a b2sdk file version (what downloads and HEADs return)."""
        return self._info(
            bucket,
            key,
            version.size,
            version.content_type,
            version.upload_timestamp,
            version.file_info,
        )

    def _info(
        self,
        bucket: str,
        key: str,
        size: int,
        content_type: str | None,
        uploaded_ms: int,
        file_info: Mapping[str, str],
    ) -> ObjectInfo:
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=size,
            content_type=content_type,
            last_modified=_ms_to_datetime(uploaded_ms),
            sha256=file_info.get(SHA256_METADATA_KEY),
            metadata=dict(file_info),
        )

    # ---- buckets -----------------------------------------------------------------

    def bucket_exists(self, name: str) -> bool:
        with self._translated(name):
            return bool(self._api.list_buckets(bucket_name=name))

    def _create_bucket(self, name: str, policy: BucketPolicy) -> None:
        settings: dict[str, Any] = {
            "bucket_info": policy.all_tags(),
            "cors_rules": _cors_rules(policy),
            "lifecycle_rules": [
                {
                    "fileNamePrefix": "",
                    "daysFromHidingToDeleting": _DAYS_FROM_HIDING_TO_DELETING,
                    "daysFromUploadingToHiding": None,
                    "daysFromStartingToCancelingUnfinishedLargeFiles": (
                        policy.abort_incomplete_uploads_after_days
                    ),
                }
            ],
            "default_server_side_encryption": _SSE_B2,
        }
        with self._translated(name):
            try:
                self._api.create_bucket(name, _PRIVATE, **settings)
            except DuplicateBucketName as e:
                existing = self._api.list_buckets(bucket_name=name)
                if not existing:
                    raise BucketNameTaken(
                        "bucket name belongs to another account", backend=self.name, bucket=name
                    ) from e
                existing[0].update(bucket_type=_PRIVATE, **settings)

    def _describe_bucket(self, name: str) -> BucketDescription:
        with self._translated(name):
            found = self._api.list_buckets(bucket_name=name)
        if not found:
            raise BucketNotFound("no such bucket", backend=self.name, bucket=name)
        bucket = found[0]
        encryption = bucket.default_server_side_encryption
        abort_days = next(
            (
                rule.get("daysFromStartingToCancelingUnfinishedLargeFiles")
                for rule in bucket.lifecycle_rules
                if rule.get("daysFromStartingToCancelingUnfinishedLargeFiles")
            ),
            None,
        )
        return BucketDescription(
            name=name,
            private=bucket.type_ == _PRIVATE,
            encrypted=encryption is not None and encryption.mode == EncryptionMode.SSE_B2,
            tls_only=None,
            cors_origins=tuple(
                origin for rule in bucket.cors_rules for origin in rule["allowedOrigins"]
            ),
            abort_incomplete_uploads_after_days=abort_days,
            tags=dict(bucket.bucket_info),
        )

    def _bucket(self, name: str) -> Bucket:
        # b2sdk caches the name-to-id lookup, so this costs a request once per bucket.
        bucket: Bucket = self._api.get_bucket_by_name(name)
        return bucket

    # ---- errors ------------------------------------------------------------------

    @contextmanager
    def _translated(self, bucket: str, key: str | None = None) -> Iterator[None]:
        where: dict[str, Any] = {"backend": self.name, "bucket": bucket, "key": key}
        try:
            yield
        except FileNotPresent as e:
            raise ObjectNotFound(str(e), **where) from e
        except (NonExistentBucket, BucketIdNotFound) as e:
            raise BucketNotFound(str(e), **where) from e
        except TooManyRequests as e:
            raise Throttled(str(e), **where) from e
        except StorageCapExceeded as e:
            raise BucketFull(str(e), **where) from e
        except (Unauthorized, AccessDenied) as e:
            raise PermissionDenied(str(e), **where) from e
        except B2Error as e:
            if isinstance(e, TransientErrorMixin):
                raise BackendUnavailable(str(e), **where) from e
            raise StorageError(str(e), **where) from e


def _cors_rules(policy: BucketPolicy) -> list[dict[str, Any]]:
    if not policy.cors_origins:
        return []
    return [
        {
            "corsRuleName": "shelflife",
            "allowedOrigins": list(policy.cors_origins),
            "allowedOperations": _CORS_OPERATIONS,
            "allowedHeaders": ["*"],
            "maxAgeSeconds": 3600,
        }
    ]
