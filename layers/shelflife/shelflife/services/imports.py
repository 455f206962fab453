"""Import: a bucket of existing photos (any S3, R2 or B2 bucket and prefix, keys of any
shape) becomes the store's, the way the sync scripts moved a 4,000-image bucket in.

Each object is read, validated, hashed, deduplicated and compressed like an upload (or
kept as it is, stripped, where that shows the same picture), recorded and placed where
the policy has a photo of its age (``imports.import_tier``). The source is only read:
nothing is written to it or deleted from it.

A dry run (the default) reads and hashes each object and opens its header (no pixel
is decoded): files by type, already present, to import, unreadable, and what to do.

A run goes through the listing in batches of ``BATCH`` keys and saves where it stands
(the batch's listing cursor and the index in it) with its counts in its run record
after each batch and whenever its time runs short; ``resume`` goes on from there. A
crash inside a batch does it again from the batch's start: each object is idempotent
(the image id comes from its owner and bytes, ingest's claim, put and activation are
safe to repeat), and one this run stored already is recognised by its ``source_key``
(``import:<run id>:...``), so it is counted imported, not already present.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shelflife.domain.audit import acting
from shelflife.domain.budget import budgeted
from shelflife.domain.capture import capture_facts
from shelflife.domain.clock import utc_now
from shelflife.domain.costs import CostModel
from shelflife.domain.errors import (
    ConfigurationError,
    Conflict,
    InvalidArgument,
    ObjectNotFound,
    RecordNotFound,
    RejectedImage,
)
from shelflife.domain.imaging import (
    CompressionPolicy,
    compress,
    header_size,
    kept_or_compressed,
    sniff_format,
    too_large,
)
from shelflife.domain.imports import ImportSource, age_of, import_tier
from shelflife.domain.records import (
    ChangeAction,
    ImageRecord,
    ImageState,
    RunKind,
    RunRecord,
    RunStatus,
    new_run_id,
)
from shelflife.domain.repository import Repository
from shelflife.domain.settings import Settings, TierName
from shelflife.domain.storage import Backends, ObjectInfo, StorageBackend, sha256_hex
from shelflife.domain.uploads import UploadKey
from shelflife.services.ingest import IngestService, image_id

logger = logging.getLogger(__name__)

# Keys listed and worked through between two saves of the run record: the sync scripts'
# batches. A crash costs at most one batch done again.
BATCH = 100
# A run stops with this much of its time left: the largest photo the limits let in
# (a 100-megapixel PNG) compresses in about ten seconds on the function.
TIME_MARGIN_MS = 15_000
# Problems (unreadable files, keys with no owner) a report lists; the counts are
# complete. The run record holds them, and a DynamoDB item stops at 400 KB.
MAX_LISTED = 100
_ATTEMPTS = 3
_START = {"page": None, "index": 0}


@dataclass
class ImportReport:
    run_id: str
    started_at: datetime
    source: ImportSource
    dry_run: bool
    requested_by: str | None = None
    counts: Counter[str] = field(default_factory=Counter)
    # By the format the bytes say (or the key's extension for what is no image).
    types: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)
    position: dict[str, Any] = field(default_factory=lambda: dict(_START))
    complete: bool = False
    # How many keys the source holds under the prefix, counted by listing at the start
    # (for progress bars); None if the count did not finish in its time.
    expected: int | None = None
    # What the import costs once (``CostModel.import_cost``): of the photos to import
    # for a dry run, of those imported for a run. Set by the service.
    cost: dict[str, float] = field(default_factory=dict)

    def problem(self, counter: str, key: str, reason: str) -> None:
        self.counts[counter] += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append({"key": key, "problem": counter, "reason": reason})

    def count_type(self, kind: str, size: int) -> None:
        entry = self.types.setdefault(kind, {"files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += size

    def recommendations(self) -> list[str]:
        c = self.counts
        advice = []
        if not self.complete:
            advice.append(
                f"the import stopped before the end: continue it with run id {self.run_id}"
            )
        if c["no_owner"]:
            advice.append(
                f"{c['no_owner']} key(s) name no owner: give owner (for all of them) or an "
                "owner_pattern that matches them"
            )
        if c["unreadable"]:
            advice.append(
                f"{c['unreadable']} file(s) are not images the store accepts (see problems); "
                "they stay in the source, untouched"
            )
        if c["vanished"]:
            advice.append(f"{c['vanished']} object(s) went from the source while it was read")
        if self.dry_run:
            if c["to_import"]:
                usd = self.cost.get("total_usd", 0.0)
                advice.append(
                    f"{c['to_import']} photo(s) to import, for about ${usd:.4f} once "
                    f"({c['to_hot']} to HOT, "
                    f"{c['to_cold']} to COLD by their age): run again with dry_run false "
                    "(shelflife import ... --run)"
                )
            elif self.complete:
                advice.append("nothing to import: every photo is in the store already")
        elif self.complete:
            advice.append(
                f"done: {c['imported']} imported, {c['already_present']} already present; "
                "the source is unchanged, delete it when you no longer need it"
            )
        return advice

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "dry_run": self.dry_run,
            "complete": self.complete,
            "source": self.source.as_dict(),
            "counts": {name: self.counts[name] for name in sorted(self.counts)},
            "types": self.types,
            "problems": self.problems,
            "recommendations": self.recommendations(),
            "progress": {"done": self.counts["listed"], "expected": self.expected},
            "cost": {
                **{name: round(usd, 6) for name, usd in self.cost.items()},
                "baseline": "once, at the price book's list prices: the import function's "
                "work, the puts and the source's listing, reads and egress; keeping the "
                "photos is then the store's usual bill",
            },
        }


class ImportService:
    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        backends: Backends,
        *,
        ingest: IngestService,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.backends = backends
        self.ingest = ingest
        self.clock = clock
        self.policy = CompressionPolicy.from_settings(settings)

    def answer(self, request: Mapping[str, Any], invocation_ms: Callable[[], int]) -> ImportReport:
        """A request read by ``shelflife.domain.imports.import_request``: a new import,
        or the continuation of ``run_id``, within the invocation's time and
        ``max_seconds``."""
        clock = budgeted(invocation_ms, request.get("max_seconds"), margin_ms=TIME_MARGIN_MS)
        if request.get("run_id") is not None:
            return self.resume(request["run_id"], remaining_ms=clock)
        return self.start(
            request["source"],
            dry_run=request["dry_run"],
            requested_by=request.get("requested_by"),
            remaining_ms=clock,
        )

    def start(
        self,
        source: ImportSource,
        *,
        dry_run: bool = True,
        requested_by: str | None = None,
        remaining_ms: Callable[[], int] | None = None,
    ) -> ImportReport:
        self._check_source(source)
        started = self.clock()
        report = ImportReport(
            run_id=new_run_id(started),
            started_at=started,
            source=source,
            dry_run=dry_run,
            requested_by=requested_by,
        )
        report.expected = self._count(source, remaining_ms)
        self._save(report)
        return self._go(report, remaining_ms)

    def resume(self, run_id: str, *, remaining_ms: Callable[[], int] | None = None) -> ImportReport:
        """Go on from where ``run_id`` stopped (a finished run answers its report)."""
        run = self.find(run_id)
        details = run.details or {}
        report = ImportReport(
            run_id=run.id,
            started_at=run.started_at,
            source=ImportSource.of(details["source"]),
            dry_run=run.dry_run,
            requested_by=details.get("requested_by"),
            counts=Counter(run.counts),
            types=details.get("types", {}),
            problems=details.get("problems", []),
            position=json.loads(run.cursor) if run.cursor else dict(_START),
            complete=run.status is RunStatus.COMPLETED,
            expected=details.get("expected"),
        )
        report.cost = self._cost(report)
        if report.complete:
            return report
        return self._go(report, remaining_ms)

    def find(self, run_id: str) -> RunRecord:
        return self.repository.run_by_id(RunKind.IMPORT, run_id)

    # ---- the run -------------------------------------------------------------------

    def _check_source(self, source: ImportSource) -> None:
        """The source must be a bucket this deployment can read and not one of its own
        (importing the store into itself would only find every photo present)."""
        own = {bucket.name for bucket in self.repository.list_buckets()}
        own |= {
            self.settings.shelf(tier, backend).bucket for tier, backend in self.settings.shelves()
        }
        if self.settings.upload_bucket:
            own.add(self.settings.upload_bucket)
        if source.bucket in own:
            raise InvalidArgument(f"{source.bucket} is one of the store's own buckets")
        store = self._store_of(source)
        if not store.bucket_exists(source.bucket):
            raise RecordNotFound(
                f"no bucket {source.bucket} on {source.backend.value} (or no right to read it)"
            )

    def _store_of(self, source: ImportSource) -> StorageBackend:
        try:
            return self.backends.get(source.backend.value)
        except ConfigurationError as e:  # a provider this deployment has no keys for
            raise InvalidArgument(
                f"this deployment cannot read {source.backend.value}: {e}"
            ) from None

    def _count(self, source: ImportSource, remaining_ms: Callable[[], int] | None) -> int | None:
        """The keys under the prefix, a listing's pages of 1,000 (4 calls for the sync
        scripts' 4,000 images), while at most half the run's time goes on it."""
        store = self._store_of(source)
        started = remaining_ms() if remaining_ms is not None else None
        keys, cursor = 0, None
        while True:
            page = store.list_page(source.bucket, prefix=source.prefix, cursor=cursor)
            keys += len(page.objects)
            if page.next_cursor is None:
                return keys
            spent_half = (
                started is not None
                and remaining_ms is not None
                and started - remaining_ms() > (started - TIME_MARGIN_MS) / 2
            )
            if spent_half:
                return None
            cursor = page.next_cursor

    def _go(self, report: ImportReport, remaining_ms: Callable[[], int] | None) -> ImportReport:
        # The trail names who asked for the import (the API's admin) or, run directly,
        # the import itself; the reason names the source.
        source = report.source
        with acting(
            report.requested_by or "import",
            reason=f"import from {source.backend.value}://{source.bucket}/{source.prefix}",
            arrival=ChangeAction.IMPORTED,
            clock=self.clock,
        ):
            store = self._store_of(report.source)
            while not report.complete:
                if remaining_ms is not None and remaining_ms() < TIME_MARGIN_MS:
                    break
                page = store.list_page(
                    report.source.bucket,
                    prefix=report.source.prefix,
                    cursor=report.position["page"],
                    limit=BATCH,
                )
                objects = page.objects
                index = int(report.position["index"])
                while index < len(objects):
                    if remaining_ms is not None and remaining_ms() < TIME_MARGIN_MS:
                        break
                    self._one(report, store, objects[index])
                    index += 1
                if index < len(objects):
                    report.position = {"page": report.position["page"], "index": index}
                elif page.next_cursor is None:
                    report.complete = True
                else:
                    report.position = {"page": page.next_cursor, "index": 0}
                report.cost = self._cost(report)
                self._save(report)
        return report

    def _one(self, report: ImportReport, store: StorageBackend, info: ObjectInfo) -> None:
        source = report.source
        report.counts["listed"] += 1
        report.counts["listed_bytes"] += info.size
        if info.key.endswith("/") and info.size == 0:
            report.counts["folders"] += 1
            return  # a console's "folder" marker, not a file
        owner = source.owner_of(info.key)
        if owner is None:
            report.problem("no_owner", info.key, "the key names no owner")
            return
        if info.size > self.policy.max_bytes:
            report.count_type(_extension(info.key), info.size)
            report.problem(
                "unreadable", info.key, too_large(info.size, self.policy.max_bytes).reason
            )
            return
        try:
            data = store.get(source.bucket, info.key).data
        except ObjectNotFound:
            report.counts["vanished"] += 1
            return
        original_sha256 = sha256_hex(data)
        kind = sniff_format(data) or _extension(info.key)
        report.count_type(kind, len(data))
        marker = f"import:{report.run_id}:{source.backend.value}/{source.bucket}/{info.key}"
        for attempt in range(1, _ATTEMPTS + 1):
            existing = self.repository.find_image(image_id(owner, original_sha256))
            if existing is not None and existing.state is ImageState.ACTIVE:
                if existing.source_key == marker:
                    # This run stored it before a crash or a time-out: imported, once.
                    self._count_imported(report, existing)
                else:
                    report.counts["already_present"] += 1
                return
            try:
                self._import(report, info, owner, data, original_sha256, existing, marker)
                return
            except RejectedImage as e:
                report.problem("unreadable", info.key, e.reason)
                return
            except Conflict:
                if attempt == _ATTEMPTS:
                    raise
                logger.info("lost a race on %s; reading again", info.key)

    def _import(
        self,
        report: ImportReport,
        info: ObjectInfo,
        owner: str,
        data: bytes,
        original_sha256: str,
        existing: ImageRecord | None,
        marker: str,
    ) -> None:
        now = self.clock()
        if report.dry_run:
            header_size(data, self.policy)  # what a dry run can tell: no pixel decoded
            facts = capture_facts(data, {})
            since = age_of(info.last_modified, facts.taken_at, now)
            tier = import_tier(since, now, self.ingest.settings)
            report.counts["to_import"] += 1
            report.counts[f"to_{tier.value.lower()}"] += 1
            return
        shrink = compress if report.source.compress else kept_or_compressed
        compressed = shrink(data, self.policy)
        facts = capture_facts(data, {})
        since = age_of(info.last_modified, facts.taken_at, now)
        # The policy as the lifecycle applies it (tuned from the daily counters), as
        # ingest schedules with it.
        tier = import_tier(since, now, self.ingest.settings)
        filename = info.key.rsplit("/", 1)[-1] or "import"
        stored = self.ingest.store(
            UploadKey(owner, None, filename),
            data,
            original_sha256,
            compressed,
            existing,
            source_key=marker,
            labels={},
            tier=tier,
            uploaded_at=since,
            counter="imported",
        )
        self._count_imported(report, stored)

    @staticmethod
    def _count_imported(report: ImportReport, image: ImageRecord) -> None:
        report.counts["imported"] += 1
        tier = image.location.tier if image.location is not None else TierName.HOT
        report.counts[f"imported_{tier.value.lower()}"] += 1
        report.counts["stored_bytes"] += image.stored_size

    def _cost(self, report: ImportReport) -> dict[str, float]:
        c, done = report.counts, "to" if report.dry_run else "imported"
        return CostModel(self.settings).import_cost(
            photos={TierName.HOT: c[f"{done}_hot"], TierName.COLD: c[f"{done}_cold"]},
            keys=c["listed"],
            bytes_read=c["listed_bytes"],
            source=report.source.backend,
        )

    def _save(self, report: ImportReport) -> None:
        now = self.clock()
        self.repository.save_run(
            RunRecord(
                kind=RunKind.IMPORT,
                id=report.run_id,
                started_at=report.started_at,
                finished_at=now if report.complete else None,
                status=RunStatus.COMPLETED if report.complete else RunStatus.RUNNING,
                dry_run=report.dry_run,
                counts=dict(report.counts),
                cursor=None if report.complete else json.dumps(report.position),
                details={
                    "source": report.source.as_dict(),
                    "requested_by": report.requested_by,
                    "types": report.types,
                    "problems": report.problems,
                    "expected": report.expected,
                },
                expires_at=now + timedelta(days=self.settings.run_record_days),
            )
        )


def _extension(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return f".{name.rsplit('.', 1)[-1].lower()}" if "." in name else "(no extension)"
