"""Ingest benchmark (issue 24's baseline): the AWS calls one upload makes, by operation,
and uploads per second through ``IngestService`` on moto, in-process.

    make bench            (or: .venv/bin/python -m bench.ingest [--uploads N])

The deployment is the functions' own (``wiring.ingest``: the table from template.yaml,
the audit table, S3 buckets on moto). Each upload is a distinct 12 MP photo made from
the corpus's largest real one (a different crop each, so none is a duplicate), put in
the upload bucket as a browser would, then ingested as the SQS message would have it.
The first upload records the buckets and is left out (steady state). Calls are counted
at botocore, whoever makes them (pynamodb included).

Wall time is moto's and this machine's, and includes ``compress``: the figure is for
comparing commits (run it at both), not a prediction of AWS. The issue's target is at
least 1.5x today's uploads per second, and at most 5 calls an upload.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto import mock_aws
from PIL import Image

from bench.aws import observed_calls, on_moto
from shelflife import wiring
from shelflife.adapters.backends import S3Backend
from shelflife.domain.settings import Settings
from shelflife.domain.storage import BucketPolicy, sha256_hex
from shelflife.domain.uploads import Upload, new_upload_id
from tests.support.template import create_table_from_template

on_moto()

REGION = "eu-west-1"
ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "corpus" / "photos" / "2569067123_aca715a2ee_o.jpg"
ENVIRONMENT = {
    "SHELFLIFE_TABLE_NAME": "shelflife-bench",
    "SHELFLIFE_AUDIT_TABLE_NAME": "shelflife-bench-audit",
    "SHELFLIFE_UPLOAD_BUCKET": "shelflife-upload-bench",
    "SHELFLIFE_TEMP_BUCKET": "shelflife-temp-bench",
    "SHELFLIFE_HOT_BUCKET": "shelflife-hot-bench",
    "SHELFLIFE_COLD_BUCKET": "shelflife-cold-bench",
    "SHELFLIFE_COLD_BACKEND": "s3",
    "SHELFLIFE_REGION": REGION,
}


def photos(count: int) -> list[bytes]:
    """``count`` distinct 12 MP JPEGs: the source photo scaled up, each cropped a
    pixel further (so no two share their bytes)."""
    with Image.open(SOURCE) as source:
        base = source.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    made = []
    for index in range(count):
        out = io.BytesIO()
        base.crop((index, 0, 4000 - count + index, 3000)).save(out, "JPEG", quality=90)
        made.append(out.getvalue())
    return made


def _counting(calls: Counter[str]) -> Callable[[str, dict[str, Any]], None]:
    def count(operation: str, _response: dict[str, Any]) -> None:
        calls.update([operation])

    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=20)
    args = parser.parse_args(argv)
    with mock_aws():
        os.environ.update(ENVIRONMENT)
        settings = Settings.from_env()
        create_table_from_template(settings.table_name)
        assert settings.audit_table_name is not None
        create_table_from_template(settings.audit_table_name, logical="AuditTable")
        s3 = S3Backend(region=REGION)
        uploads = settings.upload_bucket
        assert uploads is not None
        s3.create_bucket(uploads, BucketPolicy(tier="upload"))
        for tier in ("temp", "hot", "cold"):
            s3.create_bucket(settings.tier(tier).bucket, BucketPolicy(tier=tier))
        service = wiring.ingest(settings)
        made = photos(args.uploads + 1)
        seconds: list[float] = []
        calls: list[Counter[str]] = []
        for index, data in enumerate(made):
            key = f"incoming/alice/{new_upload_id(service.clock())}-photo.jpg"
            s3.put(uploads, key, data, content_type="image/jpeg")
            upload = Upload(bucket=uploads, key=key, size=len(data), etag=sha256_hex(data)[:32])
            made_calls: Counter[str] = Counter()
            start = time.perf_counter()
            with observed_calls(_counting(made_calls)):
                result = service.ingest(upload)
            elapsed = time.perf_counter() - start
            assert result.image is not None, result
            if index:  # the first one recorded the buckets
                seconds.append(elapsed)
                calls.append(made_calls)
    per_upload = Counter[str]()
    for counted in calls:
        per_upload.update(counted)
    mean_calls = sum(per_upload.values()) / len(calls)
    print(f"ingest of {args.uploads} distinct 12 MP uploads on moto, in-process, one at a time")
    print(f"  AWS calls an upload: {mean_calls:.1f} (target <= 5)")
    for operation, count in sorted(per_upload.items(), key=lambda item: -item[1]):
        print(f"    {operation:20} {count / len(calls):.1f}")
    median = statistics.median(seconds)
    print(f"  median {median * 1000:.0f} ms an upload: {1 / median:.2f} uploads a second")


if __name__ == "__main__":
    main()
