"""Lifecycle benchmark: what a sweep costs at 10,000 and 100,000 image records with 1 %
of them due, beside a sweep that finds its work by scanning the table.

    make bench            (or: .venv/bin/python -m bench.lifecycle [--records 10000])

In-process on moto (the DynamoDB table from template.yaml). At each size the table
holds that many scheduled image records, 1 % due now (TEMP, to be promoted to HOT) and
the rest due in a month; the objects of the due images are in memory, so what is
measured is the table's side. Measured in the same run:

- the sweep: ``LifecycleService.run(dry_run=True)``, which reads the sparse due index
  shard by shard and decides for every due image what the real run would do: the same
  queries and records as a real run, without its writes;
- the reference: a full-scan sweep's reading, a paginated Scan of the table filtered on
  the due time (DynamoDB reads, and bills, every item it scans);
- once, at ``--real`` records (1,000), a real sweep that moves every due image (claim,
  copy, verify, flip): it reads what the dry run reads. Not at the larger sizes: moto
  deep-copies the whole table for every item of a transaction (its rollback), so on
  moto a move costs time in proportion to the table, which DynamoDB's does not.

Records read are the items DynamoDB examined (``ScannedCount`` of every Query and Scan,
one per GetItem that found an item), counted at botocore. Target: at most 1.2 records
read per due record. Wall times are moto's, and moto answers a Query by scanning the
whole table, so the time per due record is also given as a ratio to one Query of the
due index at the same size: that ratio is what must stay flat.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
)

import boto3
from moto import mock_aws

from bench.aws import observed_calls
from shelflife.adapters.backends import MemoryBackend, ProviderBackends
from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.adapters.table.models import ImageModel
from shelflife.domain.policy import scheduled
from shelflife.domain.records import ImageRecord, Location
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.domain.storage import BucketPolicy, sha256_hex
from shelflife.services.lifecycle import LifecycleService
from tests.support.template import create_table_from_template

REGION = "eu-west-1"
TABLE = "shelflife-bench"
TEMP, HOT = "shelflife-temp-bench", "shelflife-hot-bench"
NOW = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
DUE_SHARE = 0.01
DATA = b"\xff\xd8 a stored image \xff\xd9"


@contextmanager
def records_read() -> Iterator[Counter[str]]:
    """Items DynamoDB examined inside (``items``), and the calls made (``calls:<op>``)."""
    read: Counter[str] = Counter()

    def count(operation: str, response: dict[str, Any]) -> None:
        read[f"calls:{operation}"] += 1
        if operation in ("Query", "Scan"):
            read["items"] += response.get("ScannedCount", 0)
        elif operation == "GetItem" and "Item" in response:
            read["items"] += 1

    with observed_calls(count):
        yield read


def record(n: int, due: bool, settings: Settings) -> ImageRecord:
    image_id = f"{n:032x}"
    tier, bucket = (TierName.TEMP, TEMP) if due else (TierName.HOT, HOT)
    placed = NOW - (timedelta(days=3) if due else timedelta(days=60))
    image = ImageRecord(
        id=image_id,
        owner=f"user-{n % 100}",
        location=Location(
            tier=tier, backend=BackendName.MEMORY, bucket=bucket, key=f"images/{image_id}.jpg"
        ),
        stored_size=len(DATA),
        stored_sha256=sha256_hex(DATA),
        uploaded_at=placed,
        placed_at=placed,
    )
    return scheduled(image, settings)


def grow(
    repository: DynamoRepository, storage: MemoryBackend, settings: Settings, start: int, stop: int
) -> int:
    """Records ``start`` to ``stop - 1`` (every hundredth due), through batch writes: the
    same items the repository writes, without a transaction each. The due images'
    objects go into the TEMP bucket. The number of due records added."""
    due = 0
    with ImageModel.batch_write() as batch:
        for n in range(start, stop):
            is_due = n % round(1 / DUE_SHARE) == 0
            image = record(n, is_due, settings)
            model = repository._model(image)
            model.version = 1
            batch.save(model)
            if is_due:
                due += 1
                assert image.location is not None
                storage.put(TEMP, image.location.key, DATA, content_type="image/jpeg")
    return due


def full_scan_sweep_reading() -> tuple[int, int, float]:
    """What a sweep without the due index reads to find the same work: (due records
    found, items scanned, milliseconds)."""
    client = boto3.client("dynamodb", region_name=REGION)
    found = scanned = 0
    start = time.perf_counter()
    for page in client.get_paginator("scan").paginate(
        TableName=TABLE,
        FilterExpression="attribute_exists(next_action) AND due_at <= :now",
        # pynamodb's UTCDateTimeAttribute format, as the items store it.
        ExpressionAttributeValues={":now": {"S": NOW.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")}},
    ):
        found += page["Count"]
        scanned += page["ScannedCount"]
    return found, scanned, (time.perf_counter() - start) * 1000


def one_due_query_ms(repository: DynamoRepository) -> float:
    start = time.perf_counter()
    repository.due_images(0, NOW, limit=100)
    return (time.perf_counter() - start) * 1000


def sweep_reads(service: LifecycleService, *, dry_run: bool) -> tuple[int, Counter[str], float]:
    """(due records the sweep acted on, records read, milliseconds)."""
    with records_read() as read:
        start = time.perf_counter()
        report = service.run(dry_run=dry_run)
        elapsed = (time.perf_counter() - start) * 1000
    acted = report.counts["promoted"]
    return acted, read, elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="10000,100000")
    parser.add_argument("--real", type=int, default=1000, help="records for the real sweep")
    args = parser.parse_args(argv)
    sizes = sorted({args.real, *(int(size) for size in args.records.split(","))})
    rows = []
    real: tuple[int, int, Counter[str], float] | None = None
    with mock_aws():
        create_table_from_template(TABLE)
        settings = Settings.from_env(
            {},
            table_name=TABLE,
            region=REGION,
            temp={"backend": "memory", "bucket": TEMP},
            hot={"backend": "memory", "bucket": HOT},
            cold={"backend": "memory", "bucket": "shelflife-cold-bench"},
            # TEMP and HOT share one store here: a promotion in place would schedule no
            # promotion at all (policy.next_step), and this measures the sweep's moves.
            promote_in_place=False,
        )
        storage = MemoryBackend()
        for tier, name in ((TierName.TEMP, TEMP), (TierName.HOT, HOT)):
            storage.create_bucket(name, BucketPolicy(tier=tier.value))
        repository = DynamoRepository(TABLE, region=REGION)
        service = LifecycleService(
            settings,
            repository,
            ProviderBackends(settings, given={"memory": storage}),
            clock=lambda: NOW,
        )
        for tier in (TierName.TEMP, TierName.HOT):
            service.placement.buckets(tier)
        have = due = 0
        for size in sizes:
            print(f"... {size} records, {DUE_SHARE:.0%} due", flush=True)
            due += grow(repository, storage, settings, have, size)
            have = size
            scan_found, scan_read, scan_ms = full_scan_sweep_reading()
            query_ms = one_due_query_ms(repository)
            acted, read, sweep_ms = sweep_reads(service, dry_run=True)
            assert acted == due == scan_found, (acted, due, scan_found)
            if size in {int(n) for n in args.records.split(",")}:
                rows.append((size, due, read, sweep_ms, scan_read, scan_ms, query_ms))
            if size == args.real:
                moved, real_read, real_ms = sweep_reads(service, dry_run=False)
                assert moved == due
                real = (size, due, real_read, real_ms)
                due = 0  # all promoted: the next sizes bring their own 1 %
    print()
    print(
        f"{'records':>8} {'due':>5} {'read':>6} {'read/due':>9} {'scan read/due':>14} "
        f"{'ms/due':>7} {'/ 1 Query':>10} {'scan ms/due':>12}"
    )
    for size, due, read, sweep_ms, scan_read, scan_ms, query_ms in rows:
        print(
            f"{size:>8} {due:>5} {read['items']:>6} {read['items'] / due:>9.2f} "
            f"{scan_read / due:>14.1f} {sweep_ms / due:>7.2f} "
            f"{sweep_ms / due / query_ms:>9.3f}x {scan_ms / due:>12.2f}"
        )
    print()
    worst = max(row[2]["items"] / row[1] for row in rows)
    print(
        f"records read per due record: at most {worst:.2f} (target <= 1.2) -> "
        f"{'met' if worst <= 1.2 else 'MISSED'}; the full-scan sweep reads "
        + ", ".join(f"{row[4] / row[1]:.0f}" for row in rows)
    )
    first, last = rows[0], rows[-1]
    flat = (last[3] / last[1] / last[6]) / (first[3] / first[1] / first[6])
    print(
        f"time per due record relative to one Query, {first[0]} -> {last[0]} records: "
        f"{flat:.2f}x (raw on moto: {first[3] / first[1]:.2f} -> {last[3] / last[1]:.2f} ms)"
    )
    if real is not None:
        size, moved, read, ms = real
        calls = {k.removeprefix("calls:"): n for k, n in sorted(read.items()) if ":" in k}
        print(
            f"real sweep at {size} records: {moved} moved, {read['items'] / moved:.2f} records "
            f"read per due record, {ms / moved:.1f} ms per move on moto; calls {calls}"
        )


if __name__ == "__main__":
    main()
