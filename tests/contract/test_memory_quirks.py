"""The in-memory backend: presigned URLs behave like real ones (they expire and
cannot be forged), and a stream is checked before it is stored."""

from __future__ import annotations

import pytest

from shelflife.adapters.backends import MemoryBackend
from shelflife.domain.errors import ChecksumMismatch, PermissionDenied
from shelflife.domain.storage import BucketPolicy


def test_urls_expire_and_cannot_be_altered() -> None:
    now = [1_000_000.0]
    backend = MemoryBackend(clock=lambda: now[0])
    backend.create_bucket("shelflife-mem", BucketPolicy(tier="temp"))
    backend.put("shelflife-mem", "a.jpg", b"a", content_type="image/jpeg")
    backend.put("shelflife-mem", "b.jpg", b"b", content_type="image/jpeg")
    url = backend.presigned_get_url("shelflife-mem", "a.jpg", expires_in=60)

    with pytest.raises(PermissionDenied, match="signature"):
        backend.open_presigned_url(url.replace("a.jpg", "b.jpg"))
    assert backend.open_presigned_url(url) == b"a"
    now[0] += 61
    with pytest.raises(PermissionDenied, match="expired"):
        backend.open_presigned_url(url)


def test_a_stream_that_does_not_match_its_sha256_is_not_stored() -> None:
    memory = MemoryBackend()
    memory.create_bucket("shelflife-temp", BucketPolicy(tier="temp"))

    with pytest.raises(ChecksumMismatch):
        memory.put_stream(
            "shelflife-temp", "k.jpg", iter([b"abc"]), size=3, sha256="0" * 64, content_type="x/y"
        )

    assert not memory.exists("shelflife-temp", "k.jpg")
