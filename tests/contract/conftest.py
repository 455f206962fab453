"""One fixture, four backends: every test in this folder runs against S3 and R2 (moto),
B2 (b2sdk's simulator) and the in-memory backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
import requests
from b2sdk.v2 import b2_url_encode
from moto import mock_aws

from shelflife.adapters.backends import (
    B2Backend,
    MemoryBackend,
    R2Backend,
    S3Backend,
    StorageBackend,
)
from shelflife.domain.storage import BucketPolicy
from tests.conftest import R2_ACCOUNT_ID, REGION

BACKEND_NAMES = ["s3", "r2", "b2", "memory"]


@dataclass
class BackendUnderTest:
    backend: StorageBackend
    # What an HTTP client holding a presigned URL would receive.
    fetch: Callable[[str], bytes]
    # Writes bytes under a key behind the backend's back, keeping the old checksum:
    # what bit rot or a foreign writer looks like.
    corrupt: Callable[[str, str, bytes], None]

    def new_bucket(self, name: str = "shelflife-test-bucket") -> str:
        self.backend.create_bucket(name, BucketPolicy(tier="temp"))
        return name


def _http_get(url: str) -> bytes:
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.content


def _s3_like(backend: S3Backend) -> BackendUnderTest:
    def corrupt(bucket: str, key: str, data: bytes) -> None:
        head = backend.client.head_object(Bucket=bucket, Key=key)
        backend.client.put_object(Bucket=bucket, Key=key, Body=data, Metadata=head["Metadata"])

    return BackendUnderTest(backend=backend, fetch=_http_get, corrupt=corrupt)


def _b2(backend: B2Backend) -> BackendUnderTest:
    raw = backend.api.session.raw_api

    def fetch(url: str) -> bytes:
        # The simulator does not check download authorizations, so check what a real
        # B2 would: a token scoped to this very file name.
        parts = urlsplit(url)
        (token,) = parse_qs(parts.query)["Authorization"]
        key = parts.path.split("/", 3)[3]
        assert b2_url_encode(key) in token or key in token, token
        with raw.download_file_from_url(None, urlunsplit(parts._replace(query=""))) as response:
            return b"".join(response.iter_content(chunk_size=1 << 20))

    def corrupt(bucket: str, key: str, data: bytes) -> None:
        info = dict(backend.head(bucket, key).metadata)
        backend.api.get_bucket_by_name(bucket).upload_bytes(data, key, file_info=info)

    return BackendUnderTest(backend=backend, fetch=fetch, corrupt=corrupt)


def _memory(backend: MemoryBackend) -> BackendUnderTest:
    def corrupt(bucket: str, key: str, data: bytes) -> None:
        stored = backend._get(bucket, key)
        backend._buckets[bucket].objects[key] = type(stored)(info=stored.info, data=data)

    return BackendUnderTest(backend=backend, fetch=backend.open_presigned_url, corrupt=corrupt)


@pytest.fixture(params=BACKEND_NAMES)
def subject(request: pytest.FixtureRequest) -> Iterator[BackendUnderTest]:
    name: str = request.param
    if name == "b2":
        yield _b2(B2Backend.simulated())
    elif name == "memory":
        yield _memory(MemoryBackend())
    else:
        with mock_aws():
            if name == "s3":
                yield _s3_like(S3Backend(region=REGION))
            else:
                yield _s3_like(
                    R2Backend.for_account(
                        R2_ACCOUNT_ID, access_key_id="testing", secret_access_key="testing"
                    )
                )
