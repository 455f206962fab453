"""The storage conformance suite: the same tests for every backend (see conftest)."""

from __future__ import annotations

import hashlib

import pytest

from shelflife.domain.errors import (
    BucketNotFound,
    ChecksumMismatch,
    InvalidArgument,
    ObjectNotFound,
)
from shelflife.domain.storage import MAX_PRESIGN_SECONDS, BucketPolicy
from tests.contract.conftest import BackendUnderTest

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40


def test_round_trip_keeps_bytes_type_metadata_and_checksum(subject: BackendUnderTest) -> None:
    backend, bucket = subject.backend, subject.new_bucket()

    written = backend.put(
        bucket, "images/a b/é.jpg", JPEG, content_type="image/jpeg", metadata={"owner": "alice"}
    )
    stored = backend.get(bucket, "images/a b/é.jpg")
    head = backend.head(bucket, "images/a b/é.jpg")

    assert stored.data == JPEG
    assert written.sha256 == stored.info.sha256 == head.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert stored.info.content_type == head.content_type == "image/jpeg"
    assert stored.info.metadata["owner"] == head.metadata["owner"] == "alice"
    assert head.size == written.size == len(JPEG)
    assert backend.exists(bucket, "images/a b/é.jpg")


def test_put_replaces_an_existing_object(subject: BackendUnderTest) -> None:
    backend, bucket = subject.backend, subject.new_bucket()
    backend.put(bucket, "k.jpg", b"first", content_type="image/jpeg")
    backend.put(bucket, "k.jpg", b"second", content_type="image/png")

    assert backend.get(bucket, "k.jpg").data == b"second"
    assert backend.head(bucket, "k.jpg").content_type == "image/png"
    assert [info.key for info in backend.iter_objects(bucket)] == ["k.jpg"]


def test_missing_object_raises_not_found(subject: BackendUnderTest) -> None:
    backend, bucket = subject.backend, subject.new_bucket()

    with pytest.raises(ObjectNotFound):
        backend.get(bucket, "nothing-here.jpg")
    with pytest.raises(ObjectNotFound):
        backend.head(bucket, "nothing-here.jpg")
    assert not backend.exists(bucket, "nothing-here.jpg")


def test_missing_bucket_raises_bucket_not_found(subject: BackendUnderTest) -> None:
    backend = subject.backend

    with pytest.raises(BucketNotFound):
        backend.put("no-such-bucket-here", "k.jpg", b"x", content_type="image/jpeg")
    with pytest.raises(BucketNotFound):
        backend.list_page("no-such-bucket-here")
    assert not backend.bucket_exists("no-such-bucket-here")


def test_delete_is_idempotent(subject: BackendUnderTest) -> None:
    backend, bucket = subject.backend, subject.new_bucket()
    backend.put(bucket, "gone.jpg", JPEG, content_type="image/jpeg")

    backend.delete(bucket, "gone.jpg")
    backend.delete(bucket, "gone.jpg")
    backend.delete(bucket, "never-existed.jpg")

    assert not backend.exists(bucket, "gone.jpg")
    assert list(backend.iter_objects(bucket)) == []


def test_listing_paginates_over_2500_objects(subject: BackendUnderTest) -> None:
    backend, bucket = subject.backend, subject.new_bucket()
    keys = [f"photos/{i:05d}.jpg" for i in range(2500)]
    for key in keys:
        backend.put(bucket, key, key.encode(), content_type="image/jpeg")
    backend.put(bucket, "quarantine/bad.jpg", b"bad", content_type="image/jpeg")

    first = backend.list_page(bucket, prefix="photos/")
    second = backend.list_page(bucket, prefix="photos/", cursor=first.next_cursor)
    listed = [info.key for info in backend.iter_objects(bucket, prefix="photos/")]
    usage = backend.usage(bucket)

    assert len(first.objects) == 1000
    assert first.next_cursor is not None
    assert [info.key for info in second.objects] == keys[1000:2000]
    assert listed == keys
    assert usage.objects == 2501
    assert usage.bytes == sum(len(key) for key in keys) + 3


def test_list_page_size_is_checked(subject: BackendUnderTest) -> None:
    backend, bucket = subject.backend, subject.new_bucket()
    for limit in (0, 1001):
        with pytest.raises(InvalidArgument, match="limit"):
            backend.list_page(bucket, limit=limit)


def test_copy_keeps_bytes_type_and_checksum(subject: BackendUnderTest) -> None:
    backend, bucket = subject.backend, subject.new_bucket()
    other = subject.new_bucket("shelflife-test-other")
    source = backend.put(bucket, "src.jpg", JPEG, content_type="image/jpeg", metadata={"id": "i1"})

    copied = backend.copy(bucket, "src.jpg", other, "dst.jpg")

    assert backend.get(other, "dst.jpg").data == JPEG
    assert copied.sha256 == source.sha256
    assert copied.content_type == "image/jpeg"
    assert copied.metadata["id"] == "i1"
    assert backend.exists(bucket, "src.jpg")


def test_a_copy_can_be_copied_back(subject: BackendUnderTest) -> None:
    """A photo moved to another bucket and back (a drained overflow bucket): the copy
    is a file like any other (b2sdk's simulator lost track of copies: KeyError)."""
    backend, bucket = subject.backend, subject.new_bucket()
    other = subject.new_bucket("shelflife-test-other")
    backend.put(bucket, "photo.jpg", JPEG, content_type="image/jpeg")
    backend.copy(bucket, "photo.jpg", other, "photo.jpg")
    backend.delete(bucket, "photo.jpg")

    back = backend.copy(other, "photo.jpg", bucket, "photo.jpg")
    again = backend.copy(bucket, "photo.jpg", bucket, "photo-2.jpg")

    assert backend.get(bucket, "photo.jpg").data == JPEG
    assert again.sha256 == back.sha256
    assert backend.get(bucket, "photo-2.jpg").data == JPEG


@pytest.mark.parametrize("storage_class", ["GLACIER_IR", "STANDARD_IA"])
def test_a_storage_class_is_kept_where_the_provider_has_classes(
    subject: BackendUnderTest, storage_class: str
) -> None:
    # The tier's offer decides the class (COLD on S3: Glacier Instant Retrieval); a
    # provider with one class (B2) stores the bytes all the same.
    backend, bucket = subject.backend, subject.new_bucket()
    other = subject.new_bucket("shelflife-test-other")
    backend.put(bucket, "src.jpg", JPEG, content_type="image/jpeg", storage_class=storage_class)
    backend.copy(bucket, "src.jpg", other, "dst.jpg", storage_class=storage_class)
    backend.put_stream(
        other,
        "streamed.jpg",
        iter([JPEG]),
        size=len(JPEG),
        sha256=hashlib.sha256(JPEG).hexdigest(),
        content_type="image/jpeg",
        storage_class=storage_class,
    )
    has_classes = backend.name != "b2"
    for where, key in ((bucket, "src.jpg"), (other, "dst.jpg"), (other, "streamed.jpg")):
        assert backend.get(where, key).data == JPEG
        expected = storage_class if has_classes else None
        assert backend.head(where, key).storage_class == expected, (backend.name, key)
    # Without one: the provider's default (S3 reports none for STANDARD).
    backend.copy(bucket, "src.jpg", other, "plain.jpg")
    assert backend.head(other, "plain.jpg").storage_class in (None, "STANDARD")


def test_open_reads_the_object_in_chunks_with_its_info(subject: BackendUnderTest) -> None:
    backend, bucket = subject.backend, subject.new_bucket()
    big = bytes(range(256)) * (3 * 4096 + 7)  # a little over 3 MiB: several chunks
    backend.put(bucket, "big.jpg", big, content_type="image/jpeg", metadata={"owner": "bob"})

    info, chunks = backend.open(bucket, "big.jpg")

    assert b"".join(chunks) == big
    assert (info.size, info.sha256) == (len(big), hashlib.sha256(big).hexdigest())
    assert (info.content_type, info.metadata["owner"]) == ("image/jpeg", "bob")
    with pytest.raises(ObjectNotFound):
        backend.open(bucket, "nothing-here.jpg")


def test_put_stream_stores_what_arrives_in_chunks(subject: BackendUnderTest) -> None:
    backend, bucket = subject.backend, subject.new_bucket()
    big = bytes(range(256)) * (3 * 4096 + 7)
    pieces = (big[i : i + 65536] for i in range(0, len(big), 65536))

    backend.put_stream(
        bucket,
        "streamed.jpg",
        pieces,
        size=len(big),
        sha256=hashlib.sha256(big).hexdigest(),
        content_type="image/jpeg",
        metadata={"owner": "carol"},
    )

    assert backend.get(bucket, "streamed.jpg").data == big  # verified against its SHA-256
    head = backend.head(bucket, "streamed.jpg")
    assert (head.sha256, head.content_type) == (hashlib.sha256(big).hexdigest(), "image/jpeg")
    assert head.metadata["owner"] == "carol"


def test_a_stream_from_one_backend_lands_in_another(subject: BackendUnderTest) -> None:
    from shelflife.adapters.backends import MemoryBackend

    source = MemoryBackend()
    source.create_bucket("source-bucket", BucketPolicy(tier="hot"))
    source.put("source-bucket", "a.jpg", JPEG, content_type="image/jpeg")
    backend, bucket = subject.backend, subject.new_bucket()
    info, chunks = source.open("source-bucket", "a.jpg")
    assert info.sha256 is not None

    backend.put_stream(
        bucket, "a.jpg", chunks, size=info.size, sha256=info.sha256, content_type="image/jpeg"
    )

    assert backend.get(bucket, "a.jpg").data == JPEG


def test_changed_bytes_fail_verification(subject: BackendUnderTest) -> None:
    backend, bucket = subject.backend, subject.new_bucket()
    backend.put(bucket, "rot.jpg", JPEG, content_type="image/jpeg")

    subject.corrupt(bucket, "rot.jpg", JPEG[:-1] + b"\x00")

    with pytest.raises(ChecksumMismatch):
        backend.get(bucket, "rot.jpg")


def test_presigned_url_fetches_the_object(subject: BackendUnderTest) -> None:
    backend, bucket = subject.backend, subject.new_bucket()
    backend.put(bucket, "shared/photo 1.jpg", JPEG, content_type="image/jpeg")

    url = backend.presigned_get_url(bucket, "shared/photo 1.jpg", expires_in=300)

    assert subject.fetch(url) == JPEG


@pytest.mark.parametrize("expires_in", [0, -5, MAX_PRESIGN_SECONDS + 1])
def test_presigned_url_expiry_is_bounded(subject: BackendUnderTest, expires_in: int) -> None:
    backend, bucket = subject.backend, subject.new_bucket()
    with pytest.raises(InvalidArgument, match="expires_in"):
        backend.presigned_get_url(bucket, "k.jpg", expires_in=expires_in)


def test_create_bucket_applies_the_tier_policies(subject: BackendUnderTest) -> None:
    backend = subject.backend
    policy = BucketPolicy(
        tier="hot",
        cors_origins=("https://photos.example.com",),
        abort_incomplete_uploads_after_days=2,
        tags={"owner": "platform"},
    )

    description = backend.create_bucket("shelflife-hot-1", policy)

    assert backend.bucket_exists("shelflife-hot-1")
    assert description.private
    assert description.encrypted
    assert description.tls_only in (True, None)  # None: the provider only speaks TLS
    assert description.cors_origins == ("https://photos.example.com",)
    assert description.abort_incomplete_uploads_after_days == 2
    if backend.supports_bucket_tags:
        assert description.tags == {"shelflife:tier": "hot", "owner": "platform"}
    else:
        assert description.tags == {}


def test_create_bucket_twice_is_idempotent(subject: BackendUnderTest) -> None:
    backend = subject.backend
    backend.create_bucket("shelflife-hot-2", BucketPolicy(tier="hot"))
    backend.put("shelflife-hot-2", "kept.jpg", JPEG, content_type="image/jpeg")

    again = backend.create_bucket(
        "shelflife-hot-2", BucketPolicy(tier="hot", cors_origins=("https://a.example",))
    )

    assert again.cors_origins == ("https://a.example",)
    assert backend.get("shelflife-hot-2", "kept.jpg").data == JPEG


def test_describe_missing_bucket_raises(subject: BackendUnderTest) -> None:
    with pytest.raises(BucketNotFound):
        subject.backend.describe_bucket("no-such-bucket-here")


@pytest.mark.parametrize("key", ["", "/leading-slash.jpg", "tab\there.jpg", "x" * 1025])
def test_invalid_keys_are_refused(subject: BackendUnderTest, key: str) -> None:
    backend, bucket = subject.backend, subject.new_bucket()
    with pytest.raises(InvalidArgument, match="key"):
        backend.put(bucket, key, b"x", content_type="image/jpeg")


@pytest.mark.parametrize("bucket", ["", "ab", "Upper-Case", "under_score", "-leading", "x" * 64])
def test_invalid_bucket_names_are_refused(subject: BackendUnderTest, bucket: str) -> None:
    with pytest.raises(InvalidArgument, match="bucket"):
        subject.backend.create_bucket(bucket, BucketPolicy(tier="temp"))
