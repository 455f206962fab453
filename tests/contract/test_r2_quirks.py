"""R2 only: no public-access-block, bucket policy, encryption or tagging calls (R2 has
none of those APIs; its buckets are private and encrypted), and the account endpoint."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from shelflife.adapters.backends import R2Backend
from shelflife.domain.storage import BucketPolicy
from tests.conftest import R2_ACCOUNT_ID


@pytest.fixture
def r2(aws: None) -> R2Backend:
    return R2Backend.for_account(R2_ACCOUNT_ID, access_key_id="testing", secret_access_key="t")


def test_bucket_creation_uses_only_what_r2_supports(r2: R2Backend) -> None:
    r2.create_bucket(
        "shelflife-hot-1", BucketPolicy(tier="hot", cors_origins=("https://a.example",))
    )

    for unsupported in ("get_public_access_block", "get_bucket_policy", "get_bucket_encryption"):
        with pytest.raises(ClientError):
            getattr(r2.client, unsupported)(Bucket="shelflife-hot-1")
    assert r2.client.get_bucket_cors(Bucket="shelflife-hot-1")["CORSRules"]
    assert r2.client.get_bucket_lifecycle_configuration(Bucket="shelflife-hot-1")["Rules"]


def test_presigned_urls_point_at_the_account_endpoint(r2: R2Backend) -> None:
    r2.create_bucket("shelflife-hot-2", BucketPolicy(tier="hot"))

    url = r2.presigned_get_url("shelflife-hot-2", "a.jpg")

    assert url.startswith(
        f"https://{R2_ACCOUNT_ID}.r2.cloudflarestorage.com/shelflife-hot-2/a.jpg?"
    )
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url  # R2 accepts SigV4 only
