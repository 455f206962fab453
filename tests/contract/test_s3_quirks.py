"""S3 only: the policies as S3 itself reports them, and its error codes."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from shelflife.adapters.backends import S3Backend
from shelflife.domain.errors import (
    BackendUnavailable,
    BucketNameTaken,
    BucketNotFound,
    ChecksumMismatch,
    PermissionDenied,
    StorageError,
    Throttled,
)
from shelflife.domain.storage import BucketPolicy
from tests.conftest import REGION


@pytest.fixture
def s3(aws: None) -> S3Backend:
    return S3Backend(region=REGION)


def test_created_bucket_carries_every_policy(s3: S3Backend) -> None:
    s3.create_bucket(
        "shelflife-temp-1", BucketPolicy(tier="temp", cors_origins=("https://a.example",))
    )
    client = s3.client

    block = client.get_public_access_block(Bucket="shelflife-temp-1")
    encryption = client.get_bucket_encryption(Bucket="shelflife-temp-1")
    policy = json.loads(client.get_bucket_policy(Bucket="shelflife-temp-1")["Policy"])
    lifecycle = client.get_bucket_lifecycle_configuration(Bucket="shelflife-temp-1")
    cors = client.get_bucket_cors(Bucket="shelflife-temp-1")
    tags = client.get_bucket_tagging(Bucket="shelflife-temp-1")["TagSet"]

    assert all(block["PublicAccessBlockConfiguration"].values())
    rules = encryption["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert lifecycle["Rules"][0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    assert "Expiration" not in lifecycle["Rules"][0]  # objects are only deleted by shelflife
    assert cors["CORSRules"][0]["AllowedOrigins"] == ["https://a.example"]
    assert {"Key": "shelflife:tier", "Value": "temp"} in tags
    assert client.get_bucket_location(Bucket="shelflife-temp-1")["LocationConstraint"] == REGION


def test_a_bucket_without_our_policies_is_described_as_such(s3: S3Backend) -> None:
    s3.client.create_bucket(
        Bucket="foreign-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )

    description = s3.describe_bucket("foreign-bucket")

    assert (description.private, description.encrypted, description.tls_only) == (
        False,
        False,
        False,
    )


def test_us_east_1_buckets_have_no_location_constraint(aws: None) -> None:
    backend = S3Backend(region="us-east-1")
    backend.create_bucket("shelflife-east", BucketPolicy(tier="temp"))

    assert backend.client.get_bucket_location(Bucket="shelflife-east")["LocationConstraint"] is None


@pytest.fixture
def stubbed() -> Iterator[tuple[S3Backend, Stubber]]:
    client = boto3.client("s3", region_name=REGION)
    with Stubber(client) as stubber:
        yield S3Backend(client), stubber


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("SlowDown", 503, Throttled),
        ("InternalError", 500, BackendUnavailable),
        ("AccessDenied", 403, PermissionDenied),
        ("NoSuchBucket", 404, BucketNotFound),
        ("BadDigest", 400, ChecksumMismatch),
        ("InvalidRequest", 400, StorageError),
    ],
)
def test_provider_errors_become_the_packages_own(
    stubbed: tuple[S3Backend, Stubber], code: str, status: int, error: type[StorageError]
) -> None:
    backend, stubber = stubbed
    stubber.add_client_error("get_object", service_error_code=code, http_status_code=status)

    with pytest.raises(error) as raised:
        backend.get("shelflife-temp", "k.jpg")

    assert isinstance(raised.value.__cause__, ClientError)
    assert raised.value.retryable is (error in (Throttled, BackendUnavailable))


def test_someone_elses_bucket_name_is_a_conflict(stubbed: tuple[S3Backend, Stubber]) -> None:
    backend, stubber = stubbed
    stubber.add_client_error("create_bucket", service_error_code="BucketAlreadyExists")

    with pytest.raises(BucketNameTaken):
        backend.create_bucket("taken-name", BucketPolicy(tier="temp"))


def test_a_stream_is_sent_with_its_sha256_for_s3_to_verify(s3: S3Backend) -> None:
    """moto stores what it is sent; S3 and R2 refuse bytes that do not match the
    x-amz-checksum-sha256 header (BadDigest, above), so the header must be there."""
    s3.create_bucket("shelflife-temp", BucketPolicy(tier="temp"))
    data = b"streamed bytes" * 1000
    digest = hashlib.sha256(data).hexdigest()
    sent: dict[str, str] = {}

    def capture(request: Any, **_: Any) -> None:
        sent.update({name.lower(): value for name, value in request.headers.items()})

    s3.client.meta.events.register("before-send.s3.PutObject", capture)
    s3.put_stream(
        "shelflife-temp",
        "k.jpg",
        iter([data[:5000], data[5000:]]),
        size=len(data),
        sha256=digest,
        content_type="image/jpeg",
    )

    assert base64.b64decode(sent["x-amz-checksum-sha256"]).hex() == digest
    assert s3.get("shelflife-temp", "k.jpg").data == data
