"""Amazon S3, and Cloudflare R2 through its S3-compatible API."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shelflife.adapters.credentials import Credentials
from shelflife.domain.errors import (
    BackendUnavailable,
    BucketNameTaken,
    BucketNotFound,
    ChecksumMismatch,
    InvalidArgument,
    ObjectNotFound,
    PermissionDenied,
    StorageError,
    Throttled,
)
from shelflife.domain.storage import (
    CHUNK_SIZE,
    DEFAULT_PRESIGN_SECONDS,
    MAX_PRESIGN_SECONDS,
    SHA256_METADATA_KEY,
    BucketDescription,
    BucketPolicy,
    ChunkReader,
    ObjectInfo,
    ObjectPage,
    PresignedPost,
    StorageBackend,
    StoredObject,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shelflife.domain.settings import Settings

_OBJECT_MISSING = {"NoSuchKey", "404", "NotFound"}
_BUCKET_MISSING = {"NoSuchBucket"}
# The bytes received do not match the checksum sent with them.
_BAD_CHECKSUM = {"BadDigest", "XAmzContentSHA256Mismatch"}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "429"}
_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "InvalidAccessKeyId"}
# Read-back calls answer these when the setting was never applied.
_NOT_CONFIGURED = {
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchBucketPolicy",
    "NoSuchCORSConfiguration",
    "NoSuchLifecycleConfiguration",
    "NoSuchTagSet",
    "NoSuchTagSetError",
}
# Standard retry mode backs off on throttling and 5xx before we ever see the error;
# SigV4 is the only signature R2 accepts and the one S3 requires for new regions. The
# payload is not part of the signature (every PUT carries its SHA-256 checksum, over
# TLS), so a body can stream: signing it would mean reading it twice.
_DEFAULT_CONFIG = Config(
    signature_version="s3v4",
    retries={"mode": "standard", "max_attempts": 4},
    s3={"payload_signing_enabled": False},
)
_CORS_METHODS = ["GET", "HEAD", "PUT", "POST"]


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _in_class(storage_class: str | None) -> dict[str, Any]:
    """The request's StorageClass, when one is asked for (else the bucket's default,
    STANDARD)."""
    return {"StorageClass": storage_class} if storage_class else {}


class S3Backend(StorageBackend):
    name: ClassVar[str] = "s3"
    verifies_sha256_on_write: ClassVar[bool] = True
    # R2 has no public access block, bucket policy, default-encryption or tagging API:
    # its buckets are always private to the S3 API and encrypted at rest.
    applies_access_policies: ClassVar[bool] = True

    def __init__(
        self,
        client: S3Client | None = None,
        *,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        config: Config | None = None,
    ) -> None:
        if client is None:
            session = session or boto3.Session()
            client = session.client(
                "s3",
                region_name=region or session.region_name or "us-east-1",
                endpoint_url=endpoint_url,
                config=_DEFAULT_CONFIG.merge(config) if config else _DEFAULT_CONFIG,
            )
        self._client = client
        self.region = region or client.meta.region_name or "us-east-1"

    @classmethod
    def from_settings(cls, settings: Settings, credentials: Credentials | None = None) -> Self:
        return cls(region=settings.region, endpoint_url=settings.s3_endpoint_url)

    @property
    def client(self) -> S3Client:
        return self._client

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
        storage_class: str | None = None,
    ) -> ObjectInfo:
        with self._translated(bucket, key):
            # The provider checks the bytes it received against this checksum, so a
            # corrupted upload fails here instead of being stored.
            self._client.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata=dict(metadata),
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                **_in_class(storage_class),
            )
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=len(data),
            content_type=content_type,
            last_modified=datetime.now(UTC),
            sha256=sha256,
            metadata=dict(metadata),
            storage_class=storage_class,
        )

    def _get(self, bucket: str, key: str) -> StoredObject:
        with self._translated(bucket, key):
            response = self._client.get_object(Bucket=bucket, Key=key)
            data = response["Body"].read()
        return StoredObject(info=self._info(bucket, key, response), data=data)

    def _open(self, bucket: str, key: str) -> tuple[ObjectInfo, Iterator[bytes]]:
        with self._translated(bucket, key):
            response = self._client.get_object(Bucket=bucket, Key=key)

        def chunks() -> Iterator[bytes]:
            with self._translated(bucket, key):
                yield from response["Body"].iter_chunks(CHUNK_SIZE)

        return self._info(bucket, key, response), chunks()

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
        with self._translated(bucket, key):
            # One PUT read from the stream as it is sent; the provider checks the bytes
            # against the checksum and stores nothing if they differ (BadDigest).
            self._client.put_object(
                Bucket=bucket,
                Key=key,
                Body=io.BufferedReader(ChunkReader(chunks), CHUNK_SIZE),
                ContentLength=size,
                ContentType=content_type,
                Metadata=dict(metadata),
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                **_in_class(storage_class),
            )

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        with self._translated(bucket, key):
            response = self._client.head_object(Bucket=bucket, Key=key)
        return self._info(bucket, key, response)

    def _delete(self, bucket: str, key: str) -> None:
        with self._translated(bucket, key):
            self._client.delete_object(Bucket=bucket, Key=key)

    def _list_page(self, bucket: str, *, prefix: str, cursor: str | None, limit: int) -> ObjectPage:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": limit}
        if cursor:
            kwargs["ContinuationToken"] = cursor
        with self._translated(bucket):
            response = self._client.list_objects_v2(**kwargs)
        objects = [
            ObjectInfo(
                bucket=bucket,
                key=item["Key"],
                size=item["Size"],
                last_modified=item["LastModified"],
            )
            for item in response.get("Contents", [])
        ]
        next_cursor = response.get("NextContinuationToken") if response.get("IsTruncated") else None
        return ObjectPage(objects=objects, next_cursor=next_cursor)

    def _copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        storage_class: str | None = None,
    ) -> ObjectInfo:
        with self._translated(src_bucket, src_key):
            self._client.copy_object(
                Bucket=dst_bucket,
                Key=dst_key,
                CopySource={"Bucket": src_bucket, "Key": src_key},
                MetadataDirective="COPY",
                **_in_class(storage_class),
            )
        return self._head(dst_bucket, dst_key)

    def _presigned_get_url(self, bucket: str, key: str, expires_in: int) -> str:
        with self._translated(bucket, key):
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
            )

    def presigned_post(
        self,
        bucket: str,
        key: str,
        *,
        max_bytes: int,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        expires_in: int = DEFAULT_PRESIGN_SECONDS,
    ) -> PresignedPost:
        """A form a browser posts straight to the bucket: this key only, 1 to
        ``max_bytes`` bytes, this content type and metadata, until it expires. S3
        enforces every condition, so nothing larger or other ever lands there."""
        self._check_location(bucket, key)
        if max_bytes < 1:
            raise InvalidArgument(f"max_bytes must be at least 1, got {max_bytes}")
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise InvalidArgument(
                f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds, got {expires_in}"
            )
        fields: dict[str, str] = {"Content-Type": content_type}
        fields.update({f"x-amz-meta-{name}": value for name, value in (metadata or {}).items()})
        conditions: list[Any] = [
            ["content-length-range", 1, max_bytes],
            *({name: value} for name, value in fields.items()),
        ]
        with self._translated(bucket, key):
            form = self._client.generate_presigned_post(
                bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
            )
        return PresignedPost(url=form["url"], fields=dict(form["fields"]))

    @staticmethod
    def _info(bucket: str, key: str, response: Mapping[str, Any]) -> ObjectInfo:
        metadata = dict(response.get("Metadata", {}))
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=response["ContentLength"],
            content_type=response.get("ContentType"),
            last_modified=response["LastModified"],
            sha256=metadata.get(SHA256_METADATA_KEY),
            metadata=metadata,
            storage_class=response.get("StorageClass"),
        )

    # ---- buckets -----------------------------------------------------------------

    def bucket_exists(self, name: str) -> bool:
        try:
            with self._translated(name):
                self._client.head_bucket(Bucket=name)
        except (BucketNotFound, ObjectNotFound):
            return False
        except PermissionDenied:
            return True  # it exists, in someone else's account
        return True

    def _create_bucket(self, name: str, policy: BucketPolicy) -> None:
        kwargs: dict[str, Any] = {"Bucket": name}
        # us-east-1 is the one region that must not be named as a location constraint.
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as e:
            if _error_code(e) == "BucketAlreadyExists":
                raise BucketNameTaken(
                    "bucket name belongs to another account", backend=self.name, bucket=name
                ) from e
            if _error_code(e) != "BucketAlreadyOwnedByYou":
                raise self._translate(e, name) from e
        with self._translated(name):
            self._apply_policies(name, policy)

    def _apply_policies(self, name: str, policy: BucketPolicy) -> None:
        if self.applies_access_policies:
            self._client.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
            self._client.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )
            self._client.put_bucket_policy(Bucket=name, Policy=json.dumps(_tls_only_policy(name)))
            self._client.put_bucket_tagging(
                Bucket=name,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in policy.all_tags().items()]},
            )
        self._client.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "abort-incomplete-uploads",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "AbortIncompleteMultipartUpload": {
                            "DaysAfterInitiation": policy.abort_incomplete_uploads_after_days
                        },
                    }
                ]
            },
        )
        if policy.cors_origins:
            self._client.put_bucket_cors(
                Bucket=name,
                CORSConfiguration={
                    "CORSRules": [
                        {
                            "AllowedOrigins": list(policy.cors_origins),
                            "AllowedMethods": _CORS_METHODS,
                            "AllowedHeaders": ["*"],
                            "MaxAgeSeconds": 3600,
                        }
                    ]
                },
            )

    def _describe_bucket(self, name: str) -> BucketDescription:
        with self._translated(name):
            self._client.head_bucket(Bucket=name)
        cors = self._read(name, "get_bucket_cors")
        lifecycle = self._read(name, "get_bucket_lifecycle_configuration")
        abort_days = next(
            (
                rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
                for rule in (lifecycle or {}).get("Rules", [])
                if rule.get("Status") == "Enabled" and "AbortIncompleteMultipartUpload" in rule
            ),
            None,
        )
        origins = tuple(
            origin
            for rule in (cors or {}).get("CORSRules", [])
            for origin in rule["AllowedOrigins"]
        )
        if not self.applies_access_policies:
            return BucketDescription(
                name=name,
                private=True,
                encrypted=True,
                tls_only=None,
                cors_origins=origins,
                abort_incomplete_uploads_after_days=abort_days,
                tags={},
            )
        block = (self._read(name, "get_public_access_block") or {}).get(
            "PublicAccessBlockConfiguration", {}
        )
        encryption = self._read(name, "get_bucket_encryption")
        bucket_policy = self._read(name, "get_bucket_policy")
        tagging = self._read(name, "get_bucket_tagging")
        return BucketDescription(
            name=name,
            private=len(block) == 4 and all(block.values()),
            encrypted=bool(
                (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules")
            ),
            tls_only=_denies_plain_http(json.loads(bucket_policy["Policy"]))
            if bucket_policy
            else False,
            cors_origins=origins,
            abort_incomplete_uploads_after_days=abort_days,
            tags={tag["Key"]: tag["Value"] for tag in (tagging or {}).get("TagSet", [])},
        )

    def _read(self, name: str, operation: str) -> dict[str, Any] | None:
        """A bucket setting, or None if it was never set."""
        try:
            result: dict[str, Any] = getattr(self._client, operation)(Bucket=name)
        except ClientError as e:
            if _error_code(e) in _NOT_CONFIGURED:
                return None
            raise self._translate(e, name) from e
        return result

    # ---- errors ------------------------------------------------------------------

    @contextmanager
    def _translated(self, bucket: str, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except ClientError as e:
            raise self._translate(e, bucket, key) from e
        except BotoCoreError as e:  # connection failures, timeouts
            raise BackendUnavailable(str(e), backend=self.name, bucket=bucket, key=key) from e

    def _translate(self, error: ClientError, bucket: str, key: str | None = None) -> StorageError:
        code = _error_code(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        where: dict[str, Any] = {"backend": self.name, "bucket": bucket, "key": key}
        message = str(error.response.get("Error", {}).get("Message") or code or error)
        if code in _BUCKET_MISSING:
            return BucketNotFound(message, **where)
        if code in _BAD_CHECKSUM:
            return ChecksumMismatch(message, **where)
        if code in _OBJECT_MISSING:
            return ObjectNotFound(message, **where) if key else BucketNotFound(message, **where)
        if code in _THROTTLED or status == 429:
            return Throttled(message, **where)
        if code in _DENIED:
            return PermissionDenied(message, **where)
        if status >= 500:
            return BackendUnavailable(message, **where)
        return StorageError(message, **where)


class R2Backend(S3Backend):
    """Cloudflare R2: the S3 backend with an account endpoint and region ``auto``."""

    name: ClassVar[str] = "r2"
    needs_credentials: ClassVar[bool] = True
    applies_access_policies: ClassVar[bool] = False
    supports_bucket_tags: ClassVar[bool] = False

    @staticmethod
    def endpoint_for(account_id: str) -> str:
        return f"https://{account_id}.r2.cloudflarestorage.com"

    @classmethod
    def for_account(
        cls,
        account_id: str,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        client: S3Client | None = None,
        config: Config | None = None,
        endpoint_url: str | None = None,
    ) -> Self:
        session = None
        if client is None:
            session = boto3.Session(
                aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key
            )
        return cls(
            client,
            session=session,
            region="auto",
            endpoint_url=endpoint_url or cls.endpoint_for(account_id),
            config=config,
        )

    @classmethod
    def from_settings(cls, settings: Settings, credentials: Credentials | None = None) -> Self:
        account_id, key_id, secret = (credentials or Credentials()).require_r2()
        return cls.for_account(
            account_id,
            access_key_id=key_id,
            secret_access_key=secret,
            endpoint_url=settings.r2_endpoint_url,
        )


def _tls_only_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyPlainHttp",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def _denies_plain_http(policy: Mapping[str, Any]) -> bool:
    return any(
        statement.get("Effect") == "Deny"
        and str(statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower()
        == "false"
        for statement in policy.get("Statement", [])
    )
