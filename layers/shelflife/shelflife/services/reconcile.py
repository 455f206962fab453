"""Reconciliation: every bucket of every tier against the table, so the two keep telling
the same story (DESIGN.md, invariants 1, 2 and 4).

For each bucket, three phases, each a page at a time (so a run can stop and resume):

1. **objects**: list every object (pagination); the key names its image
   (``images/<id>/...``), the records are read in batches. An object no record
   references is **orphaned**; one whose live record disagrees on its size or recorded
   SHA-256 is a **mismatch**.
2. **records**: every live record of the bucket (a scan of the table: there is no
   index by bucket, ``adapters.table.models``) whose object the listing did not show,
   and a HEAD does not find either, is **missing**.
3. **counters**: the bucket record's counters against the sum of its live records.

Report first: a dry run is the default. With ``fix``: orphans older than the grace
period are read again just before deletion (the record, then the object) and deleted,
at most ``max_deletes`` a run; with ``adopt``, an orphan with a valid name, its owner
and its SHA-256 in its metadata, and no record at all, gets a record instead (the seeds'
"insert missing records"); missing objects, and objects that are not what their
records say, mark their records ``lost`` (never deleted, the object left alone);
counters are set to their records' sum, only if no write moved them meanwhile.

Objects are deleted in exactly two places (invariant 2); this is the second.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shelflife.domain.audit import acting, acts_as
from shelflife.domain.budget import budgeted
from shelflife.domain.clock import utc_now
from shelflife.domain.errors import (
    BucketNotFound,
    Conflict,
    InvalidArgument,
    ObjectNotFound,
    RecordNotFound,
)
from shelflife.domain.policy import lost, scheduled
from shelflife.domain.records import (
    ChangeAction,
    ImageRecord,
    ImageState,
    Location,
    RunKind,
    RunRecord,
    RunStatus,
    new_run_id,
)
from shelflife.domain.repository import Repository
from shelflife.domain.settings import BackendName, Settings, TierName

if TYPE_CHECKING:
    from shelflife.domain.storage import Backends, ObjectInfo, StorageBackend

PAGE_SIZE = 1000
# Drift items a report lists per kind (the counts are always complete); the run record
# holds them, and a DynamoDB item stops at 400 KB.
MAX_LISTED = 100
# A run stops with this much of its time left and can be resumed.
TIME_MARGIN_MS = 60_000
PHASES = ("objects", "records", "counters")
# What ingest and moves write: images/<image id>/<sha256 of the stored bytes>-<placement
# token>.<extension> (records.placement_key); keys written before issue 19 had no token.
_IMAGE_KEY = re.compile(
    r"^images/(?P<id>[A-Za-z0-9._@+-]{1,128})/(?P<sha>[0-9a-f]{64})(?:-[0-9a-f]{32})?"
    r"\.(?P<ext>\w+)$"
)
_FORMATS = {"jpg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "avif": "AVIF"}


class DriftKind(StrEnum):
    ORPHANED = "orphaned"  # an object no record references
    MISSING = "missing"  # a live record whose object is not there
    SIZE_MISMATCH = "size_mismatch"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    COUNTERS = "counters"  # a bucket's counters disagree with its live records


def image_id_of(key: str) -> str | None:
    """The image an object key names (``images/<id>/...``, or a sized variant's
    ``variants/<id>/...``), or None."""
    parts = key.split("/")
    named = len(parts) >= 3 and parts[0] in ("images", "variants") and parts[1]
    return parts[1] if named else None


def held_in(image: ImageRecord, tier: str, bucket: str) -> list[tuple[str, int]]:
    """The objects (key, size) a live record keeps in one bucket: its image's, and its
    sized variants' (``records.Variant``)."""
    return [
        (place.key, size)
        for place, size in image.held()
        if (place.tier.value, place.bucket) == (tier, bucket)
    ]


@dataclass(frozen=True)
class ReconcileOptions:
    fix: bool = False
    adopt: bool = False
    grace_hours: int = 48
    max_deletes: int = 1000
    checksums: bool = True

    def __post_init__(self) -> None:
        if self.adopt and not self.fix:
            raise InvalidArgument("adopting orphans is a fix: pass fix as well")
        if self.grace_hours < 1:
            raise InvalidArgument(f"grace_hours must be at least 1, got {self.grace_hours}")
        if self.max_deletes < 0:
            raise InvalidArgument(f"max_deletes must be 0 or more, got {self.max_deletes}")


@dataclass
class Progress:
    run_id: str
    bucket: str  # "<tier>/<name>"
    index: int  # of the bucket, from 1
    buckets: int
    phase: str
    objects: int  # listed so far in the whole run
    expected_objects: int  # the bucket counters' total: what the bar is measured against
    done: bool = False

    @property
    def fraction(self) -> float:
        if self.done:
            return 1.0
        done = (self.index - 1 + PHASES.index(self.phase) / len(PHASES)) / max(self.buckets, 1)
        if self.expected_objects:
            done = max(done, min(self.objects / self.expected_objects, 1.0) * 0.99)
        return min(done, 1.0)


@dataclass
class ReconcileReport:
    run_id: str
    started_at: datetime
    options: ReconcileOptions
    # (tier, backend, bucket) in the order they are reconciled, fixed at the start.
    targets: list[tuple[str, str, str]]
    counts: Counter[str] = field(default_factory=Counter)
    buckets: dict[str, dict[str, int]] = field(default_factory=dict)
    types: dict[str, dict[str, int]] = field(default_factory=dict)
    drift: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    complete: bool = False
    # Where the run stands: bucket index, phase, page cursor.
    position: dict[str, Any] = field(default_factory=lambda: {"bucket": 0, "phase": "objects"})

    @property
    def drift_found(self) -> int:
        return sum(self.counts[kind.value] for kind in DriftKind)

    def add(self, kind: DriftKind, **item: Any) -> None:
        self.counts[kind.value] += 1
        listed = self.drift.setdefault(kind.value, [])
        if len(listed) < MAX_LISTED:
            listed.append({key: value for key, value in item.items() if value is not None})

    def count_object(self, tier: str, bucket: str, info: ObjectInfo) -> None:
        self.counts["objects"] += 1
        self.counts["bytes"] += info.size
        stats = self.buckets.setdefault(f"{tier}/{bucket}", {})
        stats["objects"] = stats.get("objects", 0) + 1
        stats["bytes"] = stats.get("bytes", 0) + info.size
        extension = info.key.rsplit(".", 1)[-1].lower() if "." in info.key else "(none)"
        kind = self.types.setdefault(f"{tier}/{extension}", {})
        kind["objects"] = kind.get("objects", 0) + 1
        kind["bytes"] = kind.get("bytes", 0) + info.size

    def count_record(self, tier: str, bucket: str, image: ImageRecord) -> None:
        self.counts["records"] += 1
        stats = self.buckets.setdefault(f"{tier}/{bucket}", {})
        stats["records"] = stats.get("records", 0) + 1
        held = sum(size for _, size in held_in(image, tier, bucket))
        stats["record_bytes"] = stats.get("record_bytes", 0) + held

    def recommendations(self) -> list[str]:
        c, fix = self.counts, self.options.fix
        advice = []
        if not self.complete:
            advice.append(f"the run stopped before the end: resume it with --resume {self.run_id}")
        old_orphans = c["orphaned"] - c["orphaned_young"]
        if c["orphaned_young"]:
            advice.append(
                f"{c['orphaned_young']} orphaned object(s) are younger than "
                f"{self.options.grace_hours} h (an upload or a move may still be writing "
                "them): run again after the grace period"
            )
        if old_orphans and not fix:
            advice.append(
                f"{old_orphans} orphaned object(s) past the grace period: --fix deletes them, "
                "--fix --adopt gives those with valid names a record instead"
            )
        if fix and c["deletion_cap_reached"]:
            advice.append(f"the cap of {self.options.max_deletes} deletions was reached: run again")
        if c["missing"] and not fix:
            advice.append(
                f"{c['missing']} record(s) point at missing objects: --fix marks them lost; "
                "restore the objects from a backup if you have one"
            )
        if c["marked_lost"]:
            advice.append(
                f"{c['marked_lost']} record(s) were marked lost: restore their objects or "
                "delete the records"
            )
        mismatches = c["size_mismatch"] + c["checksum_mismatch"]
        if mismatches:
            advice.append(
                f"{mismatches} object(s) differ from their records in size or checksum: "
                "written by something else, or damaged; re-upload or delete them"
            )
        if c["counters"] and not fix:
            advice.append(f"{c['counters']} bucket counter(s) disagree: --fix corrects them")
        if c["counters_busy"]:
            advice.append(
                f"{c['counters_busy']} bucket(s) changed while their counters were summed: "
                "run again when writes are quiet"
            )
        if c["buckets_missing"]:
            advice.append(
                f"{c['buckets_missing']} recorded bucket(s) do not exist at their provider"
            )
        if c["unverified"]:
            advice.append(
                f"{c['unverified']} object(s) carry no recorded SHA-256; only their size "
                "was checked"
            )
        if not advice:
            advice.append("no drift: the buckets and the table agree")
        return advice

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "dry_run": not self.options.fix,
            "complete": self.complete,
            "options": _options_dict(self.options),
            "counts": {name: self.counts[name] for name in sorted(self.counts)},
            "buckets": self.buckets,
            "types": self.types,
            "drift": self.drift,
            "recommendations": self.recommendations(),
            # Where the run stands, for progress bars of callers that continue it.
            "progress": {
                "bucket": min(int(self.position.get("bucket", 0)), len(self.targets)),
                "buckets": len(self.targets),
                "phase": self.position.get("phase"),
            },
        }


def _options_dict(options: ReconcileOptions) -> dict[str, Any]:
    return {
        "fix": options.fix,
        "adopt": options.adopt,
        "grace_hours": options.grace_hours,
        "max_deletes": options.max_deletes,
        "checksums": options.checksums,
    }


class ReconcileService:
    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        backends: Backends,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.backends = backends
        self.clock = clock
        # Keys each bucket's listing showed in this process: phase 2 HEADs only the
        # others (after a resume mid-bucket, more of them).
        self._seen: dict[tuple[str, str], set[str]] = {}

    # ---- runs --------------------------------------------------------------------

    @acts_as("reconciler", arrival=ChangeAction.ADOPTED)
    def run(
        self,
        *,
        fix: bool = False,
        adopt: bool = False,
        grace_hours: int | None = None,
        max_deletes: int | None = None,
        checksums: bool = True,
        remaining_ms: Callable[[], int] | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> ReconcileReport:
        """Reconcile every bucket; a dry run unless ``fix``. Stops with a minute of
        ``remaining_ms`` left (the report is then incomplete: ``resume`` it)."""
        options = ReconcileOptions(
            fix=fix,
            adopt=adopt,
            grace_hours=self.settings.reconcile_grace_hours if grace_hours is None else grace_hours,
            max_deletes=self.settings.reconcile_max_deletes if max_deletes is None else max_deletes,
            checksums=checksums,
        )
        started = self.clock()
        report = ReconcileReport(
            run_id=new_run_id(started),
            started_at=started,
            options=options,
            targets=self._targets(),
        )
        self._save(report)
        return self._go(report, remaining_ms, progress)

    def answer(
        self, request: Mapping[str, Any], invocation_ms: Callable[[], int]
    ) -> ReconcileReport:
        """A request read by ``shelflife.domain.requests.cleanup_request``: a run, or the
        continuation of ``run_id``, within the invocation's time and ``max_seconds``."""
        clock = budgeted(invocation_ms, request.get("max_seconds"), margin_ms=TIME_MARGIN_MS)
        if request.get("run_id") is not None:
            return self.resume(request["run_id"], remaining_ms=clock)
        return self.run(fix=request["fix"], adopt=request["adopt"], remaining_ms=clock)

    @acts_as("reconciler", arrival=ChangeAction.ADOPTED)
    def resume(
        self,
        run_id: str,
        *,
        remaining_ms: Callable[[], int] | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> ReconcileReport:
        """Go on with a run that stopped, from the page where it stopped, with its
        options and what it found so far."""
        run = self._find(run_id)
        if run.status is not RunStatus.RUNNING:
            raise Conflict(f"reconcile run {run_id} is {run.status.value}: nothing to resume")
        details = run.details or {}
        report = ReconcileReport(
            run_id=run.id,
            started_at=run.started_at,
            options=ReconcileOptions(**details["options"]),
            targets=[tuple(target) for target in details["targets"]],
            counts=Counter(run.counts),
            buckets=details.get("buckets", {}),
            types=details.get("types", {}),
            drift=details.get("drift", {}),
            position=json.loads(run.cursor) if run.cursor else {"bucket": 0, "phase": "objects"},
        )
        return self._go(report, remaining_ms, progress)

    def _go(
        self,
        report: ReconcileReport,
        remaining_ms: Callable[[], int] | None,
        progress: Callable[[Progress], None] | None,
    ) -> ReconcileReport:
        expected = sum(bucket.object_count for bucket in self.repository.list_buckets())
        while report.position["bucket"] < len(report.targets):
            if remaining_ms is not None and remaining_ms() < TIME_MARGIN_MS:
                return report  # saved after its last page; resumable
            tier, backend, name = report.targets[report.position["bucket"]]
            phase = report.position["phase"]
            step = {"objects": self._objects, "records": self._records, "counters": self._counters}
            cursor = step[phase](report, tier, backend, name, report.position.get("page"))
            self._advance(report, cursor)
            self._save(report)
            if progress is not None:
                progress(
                    Progress(
                        run_id=report.run_id,
                        bucket=f"{tier}/{name}",
                        index=min(report.position["bucket"] + 1, len(report.targets)),
                        buckets=len(report.targets),
                        phase=report.position["phase"],
                        objects=report.counts["objects"],
                        expected_objects=expected,
                        done=report.position["bucket"] >= len(report.targets),
                    )
                )
        report.complete = True
        self._save(report)
        return report

    @staticmethod
    def _advance(report: ReconcileReport, cursor: str | None) -> None:
        if cursor is not None:
            report.position["page"] = cursor
            return
        position = report.position
        following = PHASES.index(position["phase"]) + 1
        if following < len(PHASES):
            report.position = {"bucket": position["bucket"], "phase": PHASES[following]}
        else:
            report.position = {"bucket": position["bucket"] + 1, "phase": PHASES[0]}

    # ---- phase 1: objects --------------------------------------------------------

    def _objects(
        self, report: ReconcileReport, tier: str, backend: str, name: str, cursor: str | None
    ) -> str | None:
        store = self.backends.get(backend)
        if cursor is None and not store.bucket_exists(name):
            report.counts["buckets_missing"] += 1
            return None  # its records are all missing: phase 2 finds them
        seen = self._seen.setdefault((tier, name), set())
        page = store.list_page(name, cursor=cursor, limit=PAGE_SIZE)
        ids = {image_id_of(info.key) for info in page.objects} - {None}
        records = self.repository.find_images(sorted(ids))  # type: ignore[arg-type]
        for info in page.objects:
            report.count_object(tier, name, info)
            image_id = image_id_of(info.key)
            image = records.get(image_id) if image_id else None
            place = Location(
                tier=TierName(tier), backend=BackendName(backend), bucket=name, key=info.key
            )
            if image is not None and place in image.referenced():
                seen.add(info.key)
                if image.live and image.location == place:
                    self._verify(report, store, place, info, image)
                continue
            self._orphan(report, store, place, info, image)
        return page.next_cursor

    def _verify(
        self,
        report: ReconcileReport,
        store: StorageBackend,
        place: Location,
        info: ObjectInfo,
        image: ImageRecord,
    ) -> None:
        where = {"tier": place.tier.value, "bucket": place.bucket, "key": place.key}
        if info.size != image.stored_size:
            report.add(
                DriftKind.SIZE_MISMATCH,
                **where,
                image_id=image.id,
                detail=f"object {info.size} bytes, record {image.stored_size}",
                action=self._mark_lost(report, image),
            )
            return
        if not report.options.checksums or image.stored_sha256 is None:
            return
        recorded = info.sha256
        if recorded is None:  # S3's listing does not carry metadata
            try:
                recorded = store.head(place.bucket, place.key).sha256
            except ObjectNotFound:
                return  # deleted since the listing: phase 2 reports it if it matters
        if recorded is None:
            report.counts["unverified"] += 1
        elif recorded != image.stored_sha256:
            report.add(
                DriftKind.CHECKSUM_MISMATCH,
                **where,
                image_id=image.id,
                detail=f"object sha256 {recorded[:12]}..., record {image.stored_sha256[:12]}...",
                action=self._mark_lost(report, image),
            )

    def _orphan(
        self,
        report: ReconcileReport,
        store: StorageBackend,
        place: Location,
        info: ObjectInfo,
        image: ImageRecord | None,
    ) -> None:
        options = report.options
        age = self.clock() - info.last_modified
        young = age < timedelta(hours=options.grace_hours)
        if young:
            report.counts["orphaned_young"] += 1
        action = None
        if options.fix:
            if young:
                action = "kept: younger than the grace period"
            elif options.adopt and image is None and self._adopt(place, store):
                action = "adopted"
                report.counts["adopted"] += 1
            elif report.counts["deleted"] < options.max_deletes:
                action = self._delete_orphan(report, store, place)
            else:
                action = "kept: deletion cap reached"
                report.counts["deletion_cap_reached"] += 1
        state = f"record {image.state.value}" if image is not None else "no record"
        report.add(
            DriftKind.ORPHANED,
            tier=place.tier.value,
            bucket=place.bucket,
            key=place.key,
            image_id=image.id if image is not None else None,
            detail=f"{info.size} bytes, {age.total_seconds() / 3600:.0f} h old, {state}",
            action=action,
        )

    def _delete_orphan(
        self, report: ReconcileReport, store: StorageBackend, place: Location
    ) -> str:
        """Read the record and the object again just before deleting: a record written
        since the listing keeps its object, and so does an object written again."""
        image_id = image_id_of(place.key)
        current = self.repository.find_image(image_id) if image_id else None
        if current is not None and place in current.referenced():
            return "kept: referenced now"
        try:
            again = store.head(place.bucket, place.key)
        except ObjectNotFound:
            return "gone already"
        if self.clock() - again.last_modified < timedelta(hours=report.options.grace_hours):
            return "kept: written again since"
        store.delete(place.bucket, place.key)
        report.counts["deleted"] += 1
        return "deleted"

    def _adopt(self, place: Location, store: StorageBackend) -> bool:
        """Give an orphan with a valid name a record: its owner and SHA-256 must be in
        its metadata (ingest writes both), the SHA-256 matching its name."""
        match = _IMAGE_KEY.match(place.key)
        if match is None or match["ext"] not in _FORMATS:
            return False
        try:
            info = store.head(place.bucket, place.key)
        except ObjectNotFound:
            return False
        owner = info.metadata.get("owner")
        if not owner or info.sha256 != match["sha"]:
            return False
        record = ImageRecord(
            id=match["id"],
            owner=owner,
            state=ImageState.ACTIVE,
            location=place,
            stored_size=info.size,
            stored_sha256=info.sha256,
            format=_FORMATS[match["ext"]],
            uploaded_at=info.last_modified,
            placed_at=info.last_modified,
        )
        try:
            self.repository.add_image(scheduled(record, self.settings))
        except Conflict:
            return False  # a record appeared, or the bucket is not recorded
        return True

    # ---- phase 2: records --------------------------------------------------------

    def _records(
        self, report: ReconcileReport, tier: str, backend: str, name: str, cursor: str | None
    ) -> str | None:
        store = self.backends.get(backend)
        seen = self._seen.get((tier, name), set())
        page = self.repository.images_in_bucket(
            tier, name, with_variants=True, limit=PAGE_SIZE, cursor=cursor
        )
        for image in page.items:
            report.count_record(tier, name, image)
            for key, size in held_in(image, tier, name):
                if key in seen or self._exists(store, name, key):
                    continue  # not in the listing: written after it
                variant = image.location is None or image.location.key != key
                report.add(
                    DriftKind.MISSING,
                    tier=tier,
                    bucket=name,
                    key=key,
                    image_id=image.id,
                    detail=f"{'variant' if variant else 'record'} of {size} bytes, no object",
                    action=(
                        self._drop_variant(report, image, key)
                        if variant
                        else self._mark_lost(report, image)
                    ),
                )
        if page.cursor is None:
            self._seen.pop((tier, name), None)  # one bucket's keys in memory at a time
        return page.cursor

    def _mark_lost(self, report: ReconcileReport, image: ImageRecord) -> str | None:
        """In fix mode, a record whose object is missing or not what it recorded becomes
        ``lost``: kept for a human, counted nowhere, its object (if any) left alone."""
        if not report.options.fix:
            return None
        try:
            with acting(
                "reconciler", reason="no object, or not the one recorded", clock=self.clock
            ):
                self.repository.replace_image(image, lost(image))
        except Conflict:
            return "kept: the record changed during the run"
        report.counts["marked_lost"] += 1
        return "marked lost"

    def _drop_variant(self, report: ReconcileReport, image: ImageRecord, key: str) -> str | None:
        """In fix mode, a sized variant whose object is missing leaves the record (it is
        rendered again when asked for); the photo itself is untouched."""
        if not report.options.fix:
            return None
        current = self.repository.find_image(image.id)
        if current is None or key not in {v.location.key for v in current.variants}:
            return "kept: the record changed during the run"
        kept = tuple(v for v in current.variants if v.location.key != key)
        try:
            with acting("reconciler", reason="variant without its object", clock=self.clock):
                self.repository.replace_image(
                    current, current.model_copy(update={"variants": kept})
                )
        except Conflict:
            return "kept: the record changed during the run"
        report.counts["variants_dropped"] += 1
        return "variant dropped"

    @staticmethod
    def _exists(store: StorageBackend, bucket: str, key: str) -> bool:
        try:
            return store.exists(bucket, key)
        except BucketNotFound:
            return False

    # ---- phase 3: counters -------------------------------------------------------

    def _counters(
        self, report: ReconcileReport, tier: str, backend: str, name: str, cursor: str | None
    ) -> str | None:
        try:
            bucket = self.repository.get_bucket(tier, name)
        except RecordNotFound:
            report.counts["buckets_unrecorded"] += 1
            return None
        counted = (bucket.used_bytes, bucket.object_count)
        used = objects = 0
        page_cursor: str | None = None
        while True:
            page = self.repository.images_in_bucket(
                tier, name, with_variants=True, limit=PAGE_SIZE, cursor=page_cursor
            )
            for image in page.items:
                held = held_in(image, tier, name)
                used += sum(size for _, size in held)
                objects += len(held)
            if page.cursor is None:
                break
            page_cursor = page.cursor
        if (used, objects) == counted:
            return None
        action = None
        if report.options.fix:
            try:
                self.repository.set_bucket_counters(
                    tier, name, used_bytes=used, object_count=objects, expected=counted
                )
            except Conflict:
                action = "kept: the counters moved during the run"
                report.counts["counters_busy"] += 1
            else:
                action = "corrected"
                report.counts["counters_corrected"] += 1
        report.add(
            DriftKind.COUNTERS,
            tier=tier,
            bucket=name,
            detail=(
                f"counters {counted[0]} bytes in {counted[1]} objects, records "
                f"{used} bytes in {objects}"
            ),
            action=action,
        )
        return None

    # ---- helpers -----------------------------------------------------------------

    def _targets(self) -> list[tuple[str, str, str]]:
        """Every recorded bucket, and each tier's first bucket (and the serving
        buckets' first) even if unrecorded."""
        targets = {(b.tier.value, b.backend.value, b.name) for b in self.repository.list_buckets()}
        for tier, backend in self.settings.shelves():
            settings = self.settings.shelf(tier, backend)
            if not any(t[0] == tier.value and t[2] == settings.bucket for t in targets):
                targets.add((tier.value, settings.backend.value, settings.bucket))
        order = {tier.value: n for n, tier in enumerate(TierName)}
        return sorted(targets, key=lambda t: (order[t[0]], t[2]))

    def _save(self, report: ReconcileReport) -> None:
        now = self.clock()
        self.repository.save_run(
            RunRecord(
                kind=RunKind.RECONCILE,
                id=report.run_id,
                started_at=report.started_at,
                finished_at=now if report.complete else None,
                status=RunStatus.COMPLETED if report.complete else RunStatus.RUNNING,
                dry_run=not report.options.fix,
                counts=dict(report.counts),
                cursor=None if report.complete else json.dumps(report.position),
                details={
                    "options": _options_dict(report.options),
                    "targets": [list(target) for target in report.targets],
                    "buckets": report.buckets,
                    "types": report.types,
                    "drift": report.drift,
                },
                expires_at=now + timedelta(days=self.settings.run_record_days),
            )
        )

    def _find(self, run_id: str) -> RunRecord:
        return self.repository.run_by_id(RunKind.RECONCILE, run_id)
