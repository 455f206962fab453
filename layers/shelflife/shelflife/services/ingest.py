"""Ingest: an upload becomes a stored, recorded image (or a quarantined, recorded
rejection).

Every step is safe to repeat, so a redelivered event, two events for one object, or a
retry after a crash between any two steps ends in one record, one object and counters
moved once:

1. read the upload; if it is gone, an earlier delivery finished the job;
2. hash it; the image id is derived from the owner and the hash, so the same bytes of
   the same owner always meet the same record (that is the deduplication, read with a
   strongly consistent get rather than through an eventually consistent index);
3. compress it, or quarantine it with its reason and a ``rejected`` record;
4. claim a place: a ``pending`` record naming the least-full bucket and the
   content-addressed key (a conditional write: one claim wins);
5. put the object there (on a bucket that is full or gone, move the claim to the next
   bucket once and put again);
6. activate the record and count it in its bucket, in one transaction;
7. delete the upload, only now that the record is durable.

A retry finds the claim of step 4 and puts to the same place, so a crash never leaves a
second object behind. A claim nobody finishes is scheduled for deletion a day later,
and that deletion removes whatever object it may have written.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shelflife.domain.audit import AuditLog, acts_as, duplicate_entry, entered
from shelflife.domain.capture import capture_facts, labels_of
from shelflife.domain.clock import utc_now
from shelflife.domain.errors import (
    BucketFull,
    BucketNotFound,
    ChecksumMismatch,
    Conflict,
    NoBucketAvailable,
    NoRoom,
    ObjectNotFound,
    RecordNotFound,
    RejectedImage,
    ShelflifeError,
)
from shelflife.domain.imaging import (
    CompressedImage,
    CompressionPolicy,
    compress,
    sniff_format,
    too_large,
)
from shelflife.domain.measurements import Measurement
from shelflife.domain.placement import limit
from shelflife.domain.policy import scheduled
from shelflife.domain.records import (
    BucketRecord,
    DailyCounts,
    ImageRecord,
    ImageState,
    Location,
    UploadOutcome,
    UploadState,
    placement_key,
)
from shelflife.domain.repository import Repository
from shelflife.domain.settings import Settings, TierName
from shelflife.domain.storage import Backends, StorageBackend, sha256_hex
from shelflife.domain.tuning import DailyTuned
from shelflife.domain.uploads import (
    QUARANTINE_PREFIX,
    Upload,
    UploadKey,
    original_name,
    parse_upload_key,
    upload_id_of,
)
from shelflife.services.placement import Placement

logger = logging.getLogger(__name__)

# How long ``GET /uploads/{id}`` can tell what became of an upload.
UPLOAD_OUTCOME_LIFETIME = timedelta(days=7)
# Whoever uploaded under a key that names no owner.
UNKNOWN_OWNER = "_unknown"
# Concurrent deliveries of one upload: each lost race re-reads and goes on from there.
_ATTEMPTS = 3
# Buckets an upload tries when concurrent uploads keep filling the one it chose.
_PLACEMENTS = 3
_EXTENSIONS = {
    "JPEG": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "AVIF": "avif",
    "HEIF": "heic",
    "TIFF": "tif",
}


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # the owner already has these bytes: the existing image
    # This very upload was stored (or quarantined) by an earlier delivery that stopped
    # before it deleted the upload (a crash, a timeout, a notification sent twice): not
    # a duplicate, not a second rejection, and not counted again.
    REDELIVERED = "redelivered"
    REJECTED = "rejected"  # quarantined, with a rejected record
    GONE = "gone"  # the upload is no longer there: an earlier delivery finished


@dataclass(frozen=True)
class IngestResult:
    upload: Upload
    outcome: Outcome
    image: ImageRecord | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    rejection_code: str | None = None  # RejectedImage.code, for metrics

    @property
    def counted_as(self) -> Outcome | None:
        """What the function's metrics (published when an invocation ends) count this
        delivery as. A redelivery finishes what an earlier invocation stopped short of,
        its metrics included: as the upload's stored or rejected outcome. A delivery
        that found the upload gone counts nothing. (The table's daily counters are
        written with the records themselves: see ``IngestService._count``.)"""
        if self.outcome is Outcome.REDELIVERED and self.image is not None:
            rejected = self.image.state is ImageState.REJECTED
            return Outcome.REJECTED if rejected else Outcome.STORED
        return None if self.outcome in (Outcome.GONE, Outcome.REDELIVERED) else self.outcome

    def measurements(self) -> list[Measurement]:
        counted = self.counted_as
        if counted is Outcome.STORED:
            return [
                Measurement("ImagesIngested", 1),
                Measurement("BytesIn", self.bytes_in, "Bytes"),
                Measurement("BytesOut", self.bytes_out, "Bytes"),
            ]
        if counted is Outcome.DUPLICATE:
            return [Measurement("DuplicateUploads", 1)]
        if counted is Outcome.REJECTED:
            reason = self.rejection_code or "invalid"
            return [Measurement("ImagesRejected", 1, dimensions=(("reason", reason),))]
        return []

    def log_fields(self) -> dict[str, object]:
        return {
            "image_id": self.image.id if self.image else None,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "rejection": self.image.rejection_reason if self.image else None,
        }


def image_id(owner: str, content: str) -> str:
    """The id of ``owner``'s image whose original has ``content`` (its SHA-256)."""
    return hashlib.sha256(f"{owner}\n{content}".encode()).hexdigest()[:32]


def object_key(image: str, compressed: CompressedImage, stored_sha256: str) -> str:
    """A new placement's key: content-addressed, and never used before (see
    ``records.placement_key``): the same bytes uploaded again after a delete get a new
    key, so a late delete of the old one cannot take the new object with it."""
    return placement_key(image, stored_sha256, _EXTENSIONS[compressed.format])


class IngestService:
    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        backends: Backends,
        *,
        uploads: StorageBackend | None = None,
        policy: CompressionPolicy | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repository = repository
        # Where a duplicate upload is entered (it writes no record for the stream to
        # carry); None: the deployment keeps no audit trail.
        self.audit = audit
        self._tuned = DailyTuned(settings, repository, clock)
        self.backends = backends
        # The upload bucket is an S3 bucket of the stack.
        self.uploads = uploads or backends.get("s3")
        self.policy = policy or CompressionPolicy.from_settings(settings)
        self.clock = clock
        self.placement = Placement(repository, settings, backends, clock=clock)

    @property
    def settings(self) -> Settings:
        """The settings as the lifecycle applies them (tuned from the daily counters,
        read once a day per container): a new record is scheduled as the sweep would
        schedule it, so a draft whose TEMP is promoted in place (no write at 48 h) is
        archived on the learned day."""
        return self._tuned.settings

    @acts_as("ingest")
    def ingest(self, upload: Upload) -> IngestResult:
        """Process one upload. Raises only what a retry may cure (throttling, a backend
        down, no bucket left); bad input is a ``REJECTED`` result, not an error."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                result = self._ingest(upload)
            except Conflict:
                if attempt == _ATTEMPTS:
                    raise
                logger.info("lost a race on %s; reading again", upload.key)
                continue
            self._count(result)
            return result
        raise AssertionError("unreachable")

    def _count(self, result: IngestResult) -> None:
        """A duplicate in the day's activity counters. Stored and rejected uploads are
        counted in the very write that records them, so exactly once whatever crashes
        or redeliveries come; a duplicate writes no record, so it is counted after its
        upload is deleted: at most once."""
        if result.outcome is not Outcome.DUPLICATE:
            return
        try:
            self.repository.add_daily_counts(self.clock().date(), {"duplicates": 1})
        except ShelflifeError as e:
            # Activity metrics only: a lost count must not make the event be delivered
            # again (the upload is gone already).
            logger.warning("daily count of a duplicate not added: %s", e)

    def _counts(self, counter: str) -> DailyCounts:
        return DailyCounts(day=self.clock().date(), counts={counter: 1})

    # ---- the steps ---------------------------------------------------------------

    def _ingest(self, upload: Upload) -> IngestResult:
        try:
            where = parse_upload_key(upload.key)
        except RejectedImage as e:
            where = UploadKey(UNKNOWN_OWNER, None, upload.key.rsplit("/", 1)[-1] or "upload")
            return self._reject_unread(upload, where, e)
        if upload.size is not None and upload.size > self.policy.max_bytes:
            # Not downloaded: its size alone rejects it (if the event still tells the truth).
            current_size = self._head_upload(upload)
            if current_size is None:
                return IngestResult(upload, Outcome.GONE)
            if current_size > self.policy.max_bytes:
                return self._reject_unread(
                    upload, where, too_large(current_size, self.policy.max_bytes)
                )
        try:
            stored = self.uploads.get(upload.bucket, upload.key)
        except ObjectNotFound:
            return IngestResult(upload, Outcome.GONE)
        except ChecksumMismatch as e:
            return self._reject_unread(
                upload, where, RejectedImage(f"upload damaged in transit: {e}", code="checksum")
            )
        data = stored.data
        try:
            where = parse_upload_key(upload.key, stored.info.metadata)
        except RejectedImage as e:
            return self._reject(upload, where, data, e)
        original_sha256 = sha256_hex(data)
        image = image_id(where.owner, original_sha256)
        existing = self.repository.find_image(image)
        if existing is not None and existing.state is ImageState.ACTIVE:
            again = existing.source_key == upload.key
            if not again and self.audit is not None:
                # Before the upload goes: a crash before that delivers the upload
                # again, which finds the entry made (``entered``) and makes no other.
                entry = duplicate_entry(
                    existing,
                    upload.key,
                    self.clock(),
                    retention_days=self.settings.audit_retention_days,
                )
                if not entered(self.audit, entry):
                    self.audit.record(entry)
            if not again:
                existing = self._mark_duplicated(existing)
            state = UploadState.STORED if again else UploadState.DUPLICATE
            self._tell(upload, where, state, existing)
            self._delete_upload(upload)
            if again:
                return IngestResult(
                    upload, Outcome.REDELIVERED, existing, len(data), existing.stored_size
                )
            return IngestResult(upload, Outcome.DUPLICATE, existing, bytes_in=len(data))
        try:
            compressed = compress(data, self.policy)
        except RejectedImage as e:
            return self._reject(upload, where, data, e, existing=existing)
        active = self.store(
            where,
            data,
            original_sha256,
            compressed,
            existing,
            source_key=upload.key,
            labels=labels_of(stored.info.metadata or {}),
        )
        self._tell(upload, where, UploadState.STORED, active)
        self._delete_upload(upload)
        return IngestResult(
            upload, Outcome.STORED, active, bytes_in=len(data), bytes_out=len(compressed.data)
        )

    def store(
        self,
        where: UploadKey,
        data: bytes,
        original_sha256: str,
        compressed: CompressedImage,
        existing: ImageRecord | None,
        *,
        source_key: str,
        labels: dict[str, str],
        tier: TierName = TierName.TEMP,
        uploaded_at: datetime | None = None,
        counter: str = "uploaded",
    ) -> ImageRecord:
        """Steps 4 to 6 for ``compressed`` (made from ``data``, whose SHA-256 is
        ``original_sha256``), whose image ``existing`` is not active: claim a place in
        ``tier``, put the object, keep the capture facts, activate. Shared with the
        import (``shelflife.services.imports``), which places by the photo's age
        (``uploaded_at``: when it was taken or written) and counts ``imported``."""
        stored_sha256 = sha256_hex(compressed.data)
        claim, chosen = self._claim(
            where, data, original_sha256, compressed, stored_sha256, existing, tier, uploaded_at
        )
        claim, chosen = self._put(claim, compressed, chosen)
        # The capture facts, read from the original (the stored image keeps none),
        # before the image is live: a crash between the two puts them again on retry.
        self.repository.put_capture(claim.id, capture_facts(data, labels))
        for _ in range(_PLACEMENTS):
            # Active from now on, made so by this upload (which may have finished another
            # upload's claim of the same bytes: that one is then the duplicate); the
            # policy schedules its next step (an upload's promotion out of TEMP).
            live = {"state": ImageState.ACTIVE, "placed_at": self.clock(), "source_key": source_key}
            try:
                return self.repository.replace_image(
                    claim,
                    scheduled(claim.model_copy(update=live), self.settings),
                    counts=self._counts(counter),
                    within=self._within(claim, chosen),
                )
            except NoRoom as e:
                # Concurrent uploads chose the same bucket on the same counters and
                # filled it first: place again. The object left behind is the moved
                # claim's to release (cleanup deletes it, as any move's source).
                logger.info("bucket %s filled up since it was chosen; placing again", e.bucket)
                claim, chosen = self._claim_elsewhere(claim, compressed, exclude={e.bucket})
                self._put_at(claim.location, claim, compressed)  # type: ignore[arg-type]
        raise NoBucketAvailable(
            f"{_PLACEMENTS} buckets of tier {tier.value!r} filled up under concurrent uploads"
        )

    def _within(self, claim: ImageRecord, chosen: BucketRecord | None) -> dict[str, int]:
        """The claim's bucket's limit for the activation (``domain.placement.limit``):
        from the record it was chosen by, or read again for a claim an earlier delivery
        made. Placement chose by counters that concurrent uploads may also have chosen
        by; the activation's condition holds issue 19's threshold all the same."""
        assert claim.location is not None
        name = claim.location.bucket
        if chosen is None or chosen.name != name:
            try:
                chosen = self.repository.get_bucket(claim.location.tier.value, name)
            except RecordNotFound:
                return {}  # the activation refuses an unrecorded bucket by itself
        return {name: limit(chosen, self.settings.overflow_threshold_percent)}

    def _claim(
        self,
        where: UploadKey,
        data: bytes,
        original_sha256: str,
        compressed: CompressedImage,
        stored_sha256: str,
        existing: ImageRecord | None,
        tier: TierName,
        uploaded_at: datetime | None,
    ) -> tuple[ImageRecord, BucketRecord | None]:
        """The pending claim, and the bucket record it was placed by (None: an earlier
        delivery's claim, finished as it is)."""
        image = image_id(where.owner, original_sha256)
        if (
            existing is not None
            and existing.state is ImageState.PENDING
            and existing.location is not None
            and existing.stored_sha256 == stored_sha256
        ):
            # An earlier delivery claimed a place for these bytes: finish it.
            return existing, None
        key = object_key(image, compressed, stored_sha256)
        bucket = self.placement.choose(tier, len(compressed.data))
        claim = ImageRecord(
            id=image,
            owner=where.owner,
            draft_id=where.draft_id,
            state=ImageState.PENDING,
            location=Location(tier=tier, backend=bucket.backend, bucket=bucket.name, key=key),
            original_size=len(data),
            stored_size=len(compressed.data),
            original_sha256=original_sha256,
            stored_sha256=stored_sha256,
            width=compressed.width,
            height=compressed.height,
            format=compressed.format,
            uploaded_at=uploaded_at or self.clock(),
            filename=original_name(where.filename),
        )
        # The policy deletes a claim nobody finishes (and so the object it may have left).
        return self._write(existing, scheduled(claim, self.settings)), bucket

    def _put(
        self, claim: ImageRecord, compressed: CompressedImage, chosen: BucketRecord | None
    ) -> tuple[ImageRecord, BucketRecord | None]:
        """Write the object where the claim says; if that bucket is full or gone, move
        the claim to the next bucket and write there (once)."""
        assert claim.location is not None
        try:
            self._put_at(claim.location, claim, compressed)
        except (BucketFull, BucketNotFound) as e:
            logger.warning("bucket %s refused the object (%s); trying the next", e.bucket, e)
            refused = claim.location.bucket
            self.placement.refused(claim.location.tier, refused, e)
            claim, chosen = self._claim_elsewhere(claim, compressed, exclude={refused})
            self._put_at(claim.location, claim, compressed)  # type: ignore[arg-type]
        return claim, chosen

    def _claim_elsewhere(
        self, claim: ImageRecord, compressed: CompressedImage, *, exclude: set[str]
    ) -> tuple[ImageRecord, BucketRecord]:
        """The claim moved to the least-full bucket of its tier but those in
        ``exclude``: the same key in another bucket (the one it leaves is released)."""
        assert claim.location is not None
        bucket = self.placement.choose(claim.location.tier, len(compressed.data), exclude=exclude)
        moved = claim.location.model_copy(update={"bucket": bucket.name, "backend": bucket.backend})
        return self.repository.replace_image(
            claim, claim.model_copy(update={"location": moved})
        ), bucket

    def _put_at(self, location: Location, claim: ImageRecord, compressed: CompressedImage) -> None:
        self.backends.get(location.backend.value).put(
            location.bucket,
            location.key,
            compressed.data,
            content_type=compressed.mime_type,
            metadata={"image-id": claim.id, "owner": claim.owner},
            storage_class=self.settings.storage_class(location.tier),
        )

    def _mark_duplicated(self, image: ImageRecord) -> ImageRecord:
        """``image`` marked as uploaded again (the photo list shows it), once: a
        redelivery, or a later duplicate, finds it marked and writes nothing. Only a
        mark: a write that keeps losing a race to a sweep leaves it unmarked."""
        for _ in range(3):
            if image.duplicated_at is not None:
                return image
            try:
                return self.repository.replace_image(
                    image, image.model_copy(update={"duplicated_at": self.clock()})
                )
            except Conflict:
                current = self.repository.find_image(image.id)
                if current is None or current.state is not ImageState.ACTIVE:
                    return image
                image = current
        logger.warning("duplicate of %s not marked: its record kept changing", image.id)
        return image

    # ---- rejections --------------------------------------------------------------

    def _reject(
        self,
        upload: Upload,
        where: UploadKey,
        data: bytes,
        rejection: RejectedImage,
        *,
        existing: ImageRecord | None = None,
    ) -> IngestResult:
        original_sha256 = sha256_hex(data)
        image = image_id(where.owner, original_sha256)
        if existing is None:
            existing = self.repository.find_image(image)
        quarantined = self._quarantine(
            upload,
            where,
            image,
            rejection,
            existing,
            original_size=len(data),
            original_sha256=original_sha256,
            source_format=sniff_format(data),
        )
        if quarantined is None:
            return IngestResult(upload, Outcome.GONE)
        record, outcome = quarantined
        return IngestResult(
            upload, outcome, record, bytes_in=len(data), rejection_code=rejection.code
        )

    def _reject_unread(
        self, upload: Upload, where: UploadKey, rejection: RejectedImage
    ) -> IngestResult:
        """Reject without reading the bytes (too large, or unreadable): the id comes
        from the object's key and ETag instead of its hash."""
        image = image_id(where.owner, f"{upload.bucket}/{upload.key}#{upload.etag or ''}")
        quarantined = self._quarantine(
            upload,
            where,
            image,
            rejection,
            self.repository.find_image(image),
            original_size=upload.size or 0,
        )
        if quarantined is None:
            return IngestResult(upload, Outcome.GONE)
        record, outcome = quarantined
        return IngestResult(upload, outcome, record, rejection_code=rejection.code)

    def _quarantine(
        self,
        upload: Upload,
        where: UploadKey,
        image: str,
        rejection: RejectedImage,
        existing: ImageRecord | None,
        *,
        original_size: int,
        original_sha256: str | None = None,
        source_format: str | None = None,
    ) -> tuple[ImageRecord, Outcome] | None:
        """Keep the original under the quarantine prefix, record why, then delete the
        upload. The same bytes rejected again share one quarantined copy and record,
        whose ``source_key`` names the latest upload of them: ``REDELIVERED`` when that
        is this upload (an earlier delivery stopped before deleting it), else
        ``REJECTED``. None if the upload is gone before it could be copied."""
        rejected_before = existing is not None and existing.state is ImageState.REJECTED
        if existing is not None and rejected_before:
            key = existing.quarantine_key or self._quarantine_key(where, image)
        else:
            key = self._quarantine_key(where, image)
        try:
            self.uploads.copy(upload.bucket, upload.key, upload.bucket, key)
        except ObjectNotFound:
            return None
        if existing is not None and rejected_before:
            outcome = Outcome.REDELIVERED if existing.source_key == upload.key else Outcome.REJECTED
            record = existing
            if outcome is Outcome.REJECTED:
                record = self.repository.replace_image(
                    existing,
                    existing.model_copy(update={"source_key": upload.key}),
                    counts=self._counts("rejected"),
                )
        else:
            outcome = Outcome.REJECTED
            record = self._write(
                existing,
                ImageRecord(
                    id=image,
                    owner=where.owner,
                    draft_id=where.draft_id,
                    state=ImageState.REJECTED,
                    original_size=original_size,
                    original_sha256=original_sha256,
                    format=source_format,
                    uploaded_at=self.clock(),
                    rejection_reason=rejection.reason,
                    quarantine_key=key,
                    source_key=upload.key,
                ),
                counts=self._counts("rejected"),
            )
        self._tell(upload, where, UploadState.REJECTED, record, rejection.reason)
        self._delete_upload(upload)
        logger.warning("upload %s rejected: %s", upload.key, rejection.reason)
        return record, outcome

    @staticmethod
    def _quarantine_key(where: UploadKey, image: str) -> str:
        return f"{QUARANTINE_PREFIX}{where.owner}/{image}/{where.filename}"

    # ---- helpers -----------------------------------------------------------------

    def _write(
        self,
        existing: ImageRecord | None,
        record: ImageRecord,
        *,
        counts: DailyCounts | None = None,
    ) -> ImageRecord:
        """Add ``record``, or replace the record it supersedes (a rejected, deleted or
        stale pending one); ``Conflict`` if another delivery wrote first."""
        if existing is None:
            return self.repository.add_image(record, counts=counts)
        return self.repository.replace_image(
            existing, record.model_copy(update={"version": existing.version}), counts=counts
        )

    def _head_upload(self, upload: Upload) -> int | None:
        try:
            return self.uploads.head(upload.bucket, upload.key).size
        except ObjectNotFound:
            return None

    def _tell(
        self,
        upload: Upload,
        where: UploadKey,
        state: UploadState,
        image: ImageRecord,
        reason: str | None = None,
    ) -> None:
        """What became of the upload, for ``GET /uploads/{id}``, before the upload
        goes (a crash before that delivers it again, which writes the same); one
        write unit. Nothing for an object no ticket made."""
        upload_id = upload_id_of(upload.key)
        if upload_id is None:
            return
        now = self.clock()
        self.repository.put_upload_outcome(
            UploadOutcome(
                upload_id=upload_id,
                owner=where.owner,
                state=state,
                photo_id=image.id,
                filename=original_name(where.filename),
                reason=reason,
                at=now,
                expires_at=now + UPLOAD_OUTCOME_LIFETIME,
            )
        )

    def _delete_upload(self, upload: Upload) -> None:
        self.uploads.delete(upload.bucket, upload.key)
