"""The local stack's state in a folder (``shelflife local --state DIR``), so it survives
a restart: the table's items, every object of every bucket (S3 on moto, B2 on the
simulator) with its content type and metadata, and the clock.

moto and b2sdk's simulator keep everything in memory; the stack writes this snapshot
when it stops and reads it back when it starts. Queued messages are not kept: the
stack delivers what is waiting before it saves.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shelflife.adapters.backends import ProviderBackends, StorageBackend
from shelflife.domain import clock
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.domain.storage import SHA256_METADATA_KEY, BucketPolicy

VERSION = 1


@dataclass(frozen=True)
class Snapshot:
    folder: Path

    @property
    def manifest(self) -> Path:
        return self.folder / "state.json"

    def exists(self) -> bool:
        return self.manifest.exists()

    # ---- saving ----------------------------------------------------------------------

    def save(self, settings: Settings, backends: ProviderBackends) -> None:
        import boto3

        self.folder.mkdir(parents=True, exist_ok=True)
        dynamodb = boto3.client("dynamodb")
        with (self.folder / "table.jsonl.tmp").open("w") as out:
            for page in dynamodb.get_paginator("scan").paginate(TableName=settings.table_name):
                for item in page["Items"]:
                    out.write(json.dumps(item, default=_bytes) + "\n")
        (self.folder / "table.jsonl.tmp").replace(self.folder / "table.jsonl")
        with (self.folder / "objects.jsonl.tmp").open("w") as out:
            for backend_name, bucket in self._buckets(settings, backends):
                store = backends.get(backend_name)
                for info in store.iter_objects(bucket):
                    stored = store.get(bucket, info.key)
                    metadata = {
                        k: v for k, v in stored.info.metadata.items() if k != SHA256_METADATA_KEY
                    }
                    out.write(
                        json.dumps(
                            {
                                "backend": backend_name,
                                "bucket": bucket,
                                "key": info.key,
                                "content_type": stored.info.content_type
                                or "application/octet-stream",
                                "metadata": metadata,
                                "data": base64.b64encode(stored.data).decode(),
                            }
                        )
                        + "\n"
                    )
        (self.folder / "objects.jsonl.tmp").replace(self.folder / "objects.jsonl")
        self.manifest.write_text(
            json.dumps({"version": VERSION, "clock": clock.now().isoformat()}, indent=2)
        )

    def _buckets(self, settings: Settings, backends: ProviderBackends) -> Iterator[tuple[str, str]]:
        import boto3

        for bucket in boto3.client("s3").list_buckets().get("Buckets", []):
            yield BackendName.S3.value, bucket["Name"]
        from shelflife.adapters.table.dynamo import DynamoRepository

        b2 = {
            settings.tier(t).bucket for t in TierName if settings.tier(t).backend is BackendName.B2
        }
        b2 |= {
            b.name
            for b in DynamoRepository.from_settings(settings).list_buckets()
            if b.backend is BackendName.B2
        }
        for name in sorted(b2):
            if backends.get(BackendName.B2.value).bucket_exists(name):
                yield BackendName.B2.value, name

    # ---- loading ---------------------------------------------------------------------

    def load(self, settings: Settings, backends: ProviderBackends) -> datetime:
        """Put everything back; the clock it was saved with."""
        import boto3

        manifest = json.loads(self.manifest.read_text())
        if manifest.get("version") != VERSION:
            raise ValueError(
                f"{self.manifest}: state version {manifest.get('version')}, expected {VERSION}"
            )
        dynamodb = boto3.client("dynamodb")
        with (self.folder / "table.jsonl").open() as lines:
            for line in lines:
                item: dict[str, Any] = json.loads(line, object_hook=_unbytes)
                dynamodb.put_item(TableName=settings.table_name, Item=item)
        created: set[tuple[str, str]] = set()
        with (self.folder / "objects.jsonl").open() as lines:
            for line in lines:
                entry = json.loads(line)
                store: StorageBackend = backends.get(entry["backend"])
                where = (entry["backend"], entry["bucket"])
                if where not in created and not store.bucket_exists(entry["bucket"]):
                    store.create_bucket(
                        entry["bucket"], BucketPolicy(tier=_tier_of(entry["bucket"]))
                    )
                created.add(where)
                store.put(
                    entry["bucket"],
                    entry["key"],
                    base64.b64decode(entry["data"]),
                    content_type=entry["content_type"],
                    metadata=entry["metadata"],
                )
        return datetime.fromisoformat(manifest["clock"])


def _tier_of(bucket: str) -> str:
    for tier in TierName:
        if f"-{tier.value}-" in bucket or bucket.endswith(f"-{tier.value}"):
            return tier.value
    return "upload"


def _bytes(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    raise TypeError(f"cannot save {type(value).__name__}")


def _unbytes(value: dict[str, Any]) -> Any:
    if set(value) == {"__bytes__"}:
        return base64.b64decode(value["__bytes__"])
    return value
