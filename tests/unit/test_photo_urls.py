"""A photo's URL is signed by the provider its bytes are on, which is not always its
tier's provider (a tier moved to another backend; an image promoted in place)."""

from __future__ import annotations

from shelflife.domain.auth import Caller
from shelflife.domain.settings import TierName
from shelflife.services.photos import PhotoService
from tests.support.lifecycle import NOW, lifecycle_settings


def test_a_url_is_signed_by_the_provider_the_bytes_are_on() -> None:
    # HOT moved to R2 by a settings change; a photo stored before is still on S3.
    from shelflife.adapters.backends import MemoryBackend, ProviderBackends
    from shelflife.adapters.table.memory import MemoryRepository
    from shelflife.domain.records import BucketRecord, ImageRecord, Location
    from shelflife.domain.settings import BackendName

    class Tagged(MemoryBackend):
        def __init__(self, tag: str) -> None:
            super().__init__()
            self.tag = tag

        def _presigned_get_url(self, bucket: str, key: str, expires_in: int) -> str:
            return f"{self.tag}://{bucket}/{key}"

    settings = lifecycle_settings(hot={"backend": "r2"})
    repository = MemoryRepository()
    backends = ProviderBackends(settings, given={"s3": Tagged("s3"), "r2": Tagged("r2")})
    repository.add_bucket(
        BucketRecord(
            tier=TierName.HOT,
            backend=BackendName.S3,
            name="hot-bucket",
            capacity_bytes=1024**3,
            created_at=NOW,
        )
    )
    repository.add_image(
        ImageRecord(
            id="img-1",
            owner="alice",
            location=Location(
                tier=TierName.HOT, backend=BackendName.S3, bucket="hot-bucket", key="images/a.jpg"
            ),
            stored_size=10,
            uploaded_at=NOW,
        )
    )
    service = PhotoService(settings, repository, backends, clock=lambda: NOW)

    assert service.url(Caller("alice"), "img-1").url == "s3://hot-bucket/images/a.jpg"
