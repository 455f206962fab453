"""Capacity benchmark: what one capacity check costs at 1,000, 10,000 and 100,000 image
records, beside what the listing approach costs over the same objects.

    make bench            (or: .venv/bin/python -m bench.capacity [--records 1000,10000])

Everything runs in-process on moto (DynamoDB table from template.yaml, S3). At each size
the table holds that many live image records and the TEMP bucket that many objects;
then, measured in the same run:

- the check: ``CapacityService.check()``, usage from the bucket records' counters;
- listing: ``ListObjectsV2`` over the bucket, 1,000 objects a page, summing sizes (the
  seeds' way, and what the reconciler does).

API calls are counted at botocore, whoever makes them (pynamodb included). Wall times
are moto's, and moto answers a DynamoDB Query by scanning the whole table, so even a
one-partition Query slows as the table grows (DynamoDB reads only that partition). The
check's time is therefore also given as a ratio to one Query of the bucket records
measured at the same size: that ratio is what must stay flat.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from moto import mock_aws

from bench.aws import observed_calls, on_moto
from shelflife.adapters.backends import ProviderBackends, S3Backend
from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.adapters.table.models import IMAGE_SK, ImageModel, image_pk
from shelflife.domain.settings import Settings, TierName
from shelflife.services.capacity import CapacityService
from tests.support.template import create_table_from_template

on_moto()

REGION = "eu-west-1"
TABLE = "shelflife-bench"
TEMP = "shelflife-temp-123456789012-eu-west-1"
OBJECT_SIZE = 200_000
NOW = datetime(2026, 11, 21, tzinfo=UTC)


@contextmanager
def counted_calls() -> Iterator[Counter[str]]:
    """Every AWS API call made inside, by operation name."""
    calls: Counter[str] = Counter()
    with observed_calls(lambda operation, _: calls.update([operation])):
        yield calls


def timed(run: Callable[[], object], repeat: int) -> tuple[float, Counter[str]]:
    """Median milliseconds over ``repeat`` runs, and the calls of one run."""
    times = []
    with counted_calls() as calls:
        run()
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, calls


def grow(s3: S3Backend, start: int, stop: int) -> None:
    """Records and objects number ``start`` to ``stop - 1``, and the counters with them.
    Records go in through batch writes (the service's own writes are one transaction
    per image: the same end state, 25x slower to set up)."""
    with ImageModel.batch_write() as batch:
        for n in range(start, stop):
            image_id = f"{n:032x}"
            key = f"images/{image_id}/{'0' * 64}.jpg"
            batch.save(
                ImageModel(
                    image_pk(image_id),
                    IMAGE_SK,
                    id=image_id,
                    owner=f"user-{n % 100}",
                    state="active",
                    tier="temp",
                    backend="s3",
                    bucket=TEMP,
                    key=key,
                    stored_size=OBJECT_SIZE,
                    uploaded_at=NOW - timedelta(days=1),
                    version=1,
                )
            )
    for n in range(start, stop):
        s3.client.put_object(Bucket=TEMP, Key=f"images/{n:032x}/{'0' * 64}.jpg", Body=b"")


def listing_usage(s3: S3Backend) -> int:
    total = 0
    for page in s3.client.get_paginator("list_objects_v2").paginate(Bucket=TEMP):
        total += sum(item["Size"] for item in page.get("Contents", []))
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.records.split(","))
    rows = []
    with mock_aws():
        create_table_from_template(TABLE)
        settings = Settings.from_env(
            {},
            table_name=TABLE,
            region=REGION,
            # A quota large enough that no size of this run triggers a cleanup.
            temp={"backend": "s3", "bucket": TEMP, "quota_bytes": 10**15},
            hot={"backend": "s3", "bucket": "shelflife-hot-123456789012-eu-west-1"},
            cold={"backend": "s3", "bucket": "shelflife-cold-123456789012"},
        )
        repository = DynamoRepository(TABLE, region=REGION)
        s3 = S3Backend.from_settings(settings)
        service = CapacityService(
            settings, repository, ProviderBackends(settings, given={"s3": s3})
        )
        for tier in TierName:
            s3.create_bucket(settings.tier(tier).bucket, service.placement.bucket_policy(tier))
        service.check()
        have = 0
        for size in sizes:
            print(f"... {size} records and objects", flush=True)
            grow(s3, have, size)
            have = size
            # The counters as ingest's transactions would have left them.
            repository.set_bucket_counters(
                "temp", TEMP, used_bytes=size * OBJECT_SIZE, object_count=size
            )
            check_ms, check_calls = timed(service.check, args.repeat)
            query_ms, _ = timed(lambda: repository.list_buckets("temp"), args.repeat)
            # One pass is already size/1000 calls; moto's pages are slow to repeat.
            list_ms, list_calls = timed(lambda: listing_usage(s3), 1)
            rows.append((size, check_ms, check_calls, list_ms, list_calls, query_ms))
    print()
    print(
        f"{'records':>8} {'check calls':>12} {'check ms':>9} {'/ 1 Query':>10} "
        f"{'list calls':>11} {'list ms':>9}"
    )
    for size, check_ms, check_calls, list_ms, list_calls, query_ms in rows:
        print(
            f"{size:>8} {sum(check_calls.values()):>12} {check_ms:>9.1f} "
            f"{check_ms / query_ms:>9.1f}x {sum(list_calls.values()):>11} {list_ms:>9.1f}"
        )
    print()
    first, last = rows[0], rows[-1]
    growth = (last[1] / last[5]) / (first[1] / first[5])
    calls_flat = len({sum(row[2].values()) for row in rows}) == 1
    print(
        f"check calls per run: {dict(first[2])} at every size -> "
        f"{'flat' if calls_flat else 'NOT FLAT'}"
    )
    print(
        f"check time relative to one Query, {first[0]} -> {last[0]} records: {growth:.2f}x "
        f"(listing: {last[3] / first[3]:.1f}x; at {last[0]} the check costs "
        f"{last[3] / last[1]:.0f}x less time and {sum(last[4].values())} vs "
        f"{sum(last[2].values())} calls)"
    )


if __name__ == "__main__":
    main()
