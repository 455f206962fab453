"""B2 only: file versions, hiding, bucket settings as B2 reports them, error mapping."""

from __future__ import annotations

import pytest
from b2sdk.v2.exception import ServiceError, StorageCapExceeded, TooManyRequests

from shelflife.adapters.backends import B2Backend
from shelflife.domain.errors import (
    BackendUnavailable,
    BucketFull,
    ChecksumMismatch,
    ObjectNotFound,
    Throttled,
)
from shelflife.domain.storage import BucketPolicy


@pytest.fixture
def b2() -> B2Backend:
    backend = B2Backend.simulated()
    backend.create_bucket(
        "shelflife-cold", BucketPolicy(tier="cold", cors_origins=("https://a.example",))
    )
    return backend


def versions(b2: B2Backend, key: str) -> list[str]:
    bucket = b2.api.get_bucket_by_name("shelflife-cold")
    return [version.id_ for version in bucket.list_file_versions(key)]


def test_delete_removes_every_version(b2: B2Backend) -> None:
    b2.put("shelflife-cold", "a.jpg", b"one", content_type="image/jpeg")
    b2.put("shelflife-cold", "a.jpg", b"two", content_type="image/jpeg")
    assert len(versions(b2, "a.jpg")) == 2

    b2.delete("shelflife-cold", "a.jpg")

    assert versions(b2, "a.jpg") == []


def test_hide_keeps_versions_but_reads_answer_not_found(b2: B2Backend) -> None:
    b2.put("shelflife-cold", "h.jpg", b"data", content_type="image/jpeg")

    b2.hide("shelflife-cold", "h.jpg")

    with pytest.raises(ObjectNotFound):
        b2.get("shelflife-cold", "h.jpg")
    assert [info.key for info in b2.iter_objects("shelflife-cold")] == []
    assert len(versions(b2, "h.jpg")) == 2  # the upload and the hide marker


def test_bucket_is_private_encrypted_and_removes_only_hidden_versions(b2: B2Backend) -> None:
    bucket = b2.api.list_buckets(bucket_name="shelflife-cold")[0]

    assert bucket.type_ == "allPrivate"
    assert bucket.default_server_side_encryption.mode.value == "SSE-B2"
    (rule,) = bucket.lifecycle_rules
    assert rule["daysFromHidingToDeleting"] == 1
    assert not rule.get("daysFromUploadingToHiding")  # B2 never hides on its own
    assert bucket.cors_rules[0]["allowedOrigins"] == ["https://a.example"]
    assert bucket.bucket_info == {"shelflife:tier": "cold"}


def test_download_authorization_is_scoped_to_the_file(b2: B2Backend) -> None:
    b2.put("shelflife-cold", "dir/x.jpg", b"data", content_type="image/jpeg")

    url = b2.presigned_get_url("shelflife-cold", "dir/x.jpg", expires_in=60)

    assert url.startswith(
        b2.api.account_info.get_download_url() + "/file/shelflife-cold/dir/x.jpg?"
    )
    assert "Authorization=" in url


@pytest.mark.parametrize(
    ("raised", "expected"),
    [(TooManyRequests(), Throttled), (ServiceError("503 service unavailable"), BackendUnavailable)],
)
def test_transient_errors_are_retryable(
    b2: B2Backend, monkeypatch: pytest.MonkeyPatch, raised: Exception, expected: type[Exception]
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(b2.api.session, "list_file_names", fail)

    with pytest.raises(expected) as error:
        b2.list_page("shelflife-cold")
    assert error.value.retryable  # type: ignore[attr-defined]


def test_the_storage_cap_means_the_bucket_is_full(
    b2: B2Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise StorageCapExceeded()

    monkeypatch.setattr(b2.api.session, "upload_file", fail)

    with pytest.raises(BucketFull, match=r"shelflife-cold/a\.jpg"):
        b2.put("shelflife-cold", "a.jpg", b"data", content_type="image/jpeg")


def test_a_stream_that_does_not_match_its_sha256_is_not_stored(b2: B2Backend) -> None:
    """B2 checks SHA-1 of what it received, not our SHA-256: the bytes are gathered
    and checked before the upload."""
    with pytest.raises(ChecksumMismatch):
        b2.put_stream(
            "shelflife-cold",
            "k.jpg",
            iter([b"not what was promised"]),
            size=21,
            sha256="0" * 64,
            content_type="image/jpeg",
        )

    assert not b2.exists("shelflife-cold", "k.jpg")
