"""The capacity check against moto: DynamoDB from template.yaml, S3 buckets whose
policies are read back from the provider."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from shelflife.adapters.backends import ProviderBackends, S3Backend
from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.domain.records import BucketStatus
from shelflife.domain.settings import Settings, TierName
from shelflife.domain.storage import BucketPolicy
from shelflife.services.capacity import CapacityReport, CapacityService
from tests.conftest import REGION
from tests.support.template import create_table_from_template, resource

TABLE = "shelflife-test"
BASE = "shelflife-temp-123456789012-eu-west-1"
QUOTA = 10_000


@pytest.fixture
def settings() -> Iterator[Settings]:
    with mock_aws():
        create_table_from_template(TABLE)
        yield Settings.from_env(
            {},
            table_name=TABLE,
            region=REGION,
            temp={"backend": "s3", "bucket": BASE, "quota_bytes": QUOTA},
            hot={"backend": "s3", "bucket": "shelflife-hot-123456789012-eu-west-1"},
            cold={"backend": "s3", "bucket": "shelflife-cold-123456789012"},
            cors_allowed_origins=("https://photos.example",),
        )


class RacingS3(S3Backend):
    """Holds every create_bucket call until two are waiting, so two checks really are
    inside overflow creation at the same time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Barrier(2, timeout=10)
        self.creates = 0

    def _create_bucket(self, name: str, policy: BucketPolicy) -> None:
        self.creates += 1
        if name.startswith(f"{BASE}-"):
            self.gate.wait()
        super()._create_bucket(name, policy)


def test_two_checks_at_once_open_exactly_one_overflow_bucket_with_the_tiers_policies(
    settings: Settings,
) -> None:
    s3 = RacingS3.from_settings(settings)
    repository = DynamoRepository(TABLE, region=REGION)
    service = CapacityService(settings, repository, ProviderBackends(settings, given={"s3": s3}))
    # The stack created the first buckets; the first check records them.
    for tier in TierName:
        s3.create_bucket(settings.tier(tier).bucket, service.placement.bucket_policy(tier))
    service.check()
    repository.set_bucket_counters("temp", BASE, used_bytes=9_600, object_count=40)  # 96 %
    reports: list[CapacityReport] = []
    errors: list[BaseException] = []

    def check() -> None:
        try:
            reports.append(service.check())
        except BaseException as e:  # reported below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert s3.creates == 3 + 2  # the three first buckets, then both checks raced
    names = sorted(b["Name"] for b in s3.client.list_buckets()["Buckets"])
    assert [n for n in names if n.startswith(BASE)] == [BASE, f"{BASE}-1"]
    records = {b.name: b.status for b in repository.list_buckets("temp")}
    assert records == {BASE: BucketStatus.FULL, f"{BASE}-1": BucketStatus.ACTIVE}
    assert sorted(name for report in reports for name in report.opened) == [f"{BASE}-1"] * 2

    overflow = s3.describe_bucket(f"{BASE}-1")
    first = s3.describe_bucket(BASE)
    assert (overflow.private, overflow.encrypted, overflow.tls_only) == (True, True, True)
    assert overflow.cors_origins == ("https://photos.example",)
    assert overflow.abort_incomplete_uploads_after_days == 1
    assert overflow.tags == {"shelflife:tier": "temp"}
    assert overflow == first.__class__(**{**first.__dict__, "name": overflow.name})


def test_overflow_buckets_get_what_the_template_gives_the_first_bucket() -> None:
    properties = resource("TempBucket")["Properties"]
    policy = BucketPolicy(tier="temp")

    assert properties["Tags"] == [{"Key": k, "Value": v} for k, v in policy.all_tags().items()]
    [rule] = properties["LifecycleConfiguration"]["Rules"]
    days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
    assert days == policy.abort_incomplete_uploads_after_days
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert "BucketEncryption" in properties
