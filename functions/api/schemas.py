"""The API's request and response bodies (pydantic): what the OpenAPI document says
and what every request is validated against before a service sees it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from shelflife.domain.capture import MAX_LABEL_BYTES, MAX_LABELS, Capture
from shelflife.domain.records import ChangeAction, ImageAction, ImageRecord, ImageState
from shelflife.domain.settings import TierName
from shelflife.domain.uploads import PLAIN_ID
from shelflife.domain.variants import DEFAULT_WIDTHS
from shelflife.services.photos import FILENAME
from shelflife.services.stats import BucketUsageReport

PhotoId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@+-]+$")]
DraftId = Annotated[str, Field(pattern=PLAIN_ID.pattern)]


class _Body(BaseModel):
    # A field the API does not know is a mistake worth telling the caller about.
    model_config = ConfigDict(extra="forbid")


class _Answer(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ---- errors ---------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable word for programs to branch on")
    message: str = Field(description="What went wrong, for people")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class GatewayError(BaseModel):
    """What API Gateway itself answers (its JWT authorizer's 401, its throttling 429,
    a failed integration's 500), before or instead of the function."""

    message: str


# ---- uploads and photos ---------------------------------------------------------------


class UploadRequest(_Body):
    filename: Annotated[str, Field(pattern=FILENAME.pattern, examples=["beach.jpg"])]
    # What ingest can read (the settings may accept fewer: 400 then).
    content_type: Literal[
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/avif",
        "image/heic",
        "image/heif",
        "image/gif",
        "image/tiff",
    ]
    # Strict (as every number and flag of a body): "12" and true are mistakes, not 12 and 1.
    size: Annotated[
        StrictInt | None, Field(ge=1, description="Bytes, if known: checked up front")
    ] = None
    draft_id: DraftId | None = None
    labels: Annotated[
        dict[str, str] | None,
        Field(
            description=f"At most {MAX_LABELS} labels kept with the photo: keys of 1-32 "
            "lowercase letters, digits, _ or -; values of at most 256 printable ASCII "
            f"characters; {MAX_LABEL_BYTES} bytes in all",
            max_length=MAX_LABELS,
        ),
    ] = None


class UploadResponse(_Answer):
    upload_id: str
    key: str = Field(description="Where the upload lands in the upload bucket")
    url: str = Field(description="POST the form here (multipart/form-data)")
    fields: dict[str, str] = Field(description="Form fields to send before the file")
    max_bytes: int
    expires_at: datetime


class UploadStatusResponse(_Answer):
    upload_id: str
    state: Literal["pending", "expired", "stored", "duplicate", "rejected"] = Field(
        description="pending: no outcome yet; expired: no upload came before the ticket "
        "ran out; stored as photo_id; duplicate of photo_id (nothing new stored); "
        "rejected, with the reason (photo_id is the rejected record)"
    )
    photo_id: str | None = None
    filename: str | None = None
    reason: str | None = None
    at: datetime | None = Field(default=None, description="When ingest decided")


class Photo(_Answer):
    id: str
    state: ImageState
    draft_id: str | None
    tier: TierName | None
    format: str | None
    width: int | None
    height: int | None
    original_size: int
    stored_size: int
    uploaded_at: datetime
    last_accessed_at: datetime | None = Field(
        description="The last time its URL was asked for before it was published"
    )
    access_count: int = Field(
        description="URLs asked for before it was published (a published photo's views "
        "are counted by day: GET /workload)"
    )
    published_at: datetime | None
    next_action: ImageAction | None
    due_at: datetime | None
    rejection_reason: str | None
    filename: str | None = Field(
        default=None, description="The file name its first upload gave (None before issue 23)"
    )
    duplicated_at: datetime | None = Field(
        default=None,
        description="When its owner first uploaded the same bytes again (a duplicate: "
        "nothing new stored; GET /uploads/{id} named this photo)",
    )
    variants: list[str] = Field(
        default_factory=list,
        description="The sized variants stored so far (GET /photos/{id}/image renders others)",
    )
    srcset: str | None = Field(
        default=None,
        description="For an <img srcset>: the photo at each configured width it reaches, as "
        "API URLs (/photos/{id}/image?w=...) that redirect to a signed URL; the requests "
        "need the caller's token (see the README)",
    )

    @classmethod
    def of(
        cls, image: ImageRecord, tier: TierName | None, widths: tuple[int, ...] = DEFAULT_WIDTHS
    ) -> Photo:
        """``image`` in ``tier``, the tier it is in now (``PhotoService.tier_of``)."""
        return cls(
            duplicated_at=image.duplicated_at,
            variants=[variant.name for variant in image.variants],
            srcset=srcset(image, widths),
            id=image.id,
            state=image.state,
            draft_id=image.draft_id,
            tier=tier,
            format=image.format,
            width=image.width,
            height=image.height,
            original_size=image.original_size,
            stored_size=image.stored_size,
            uploaded_at=image.uploaded_at,
            last_accessed_at=image.last_accessed_at,
            access_count=image.access_count,
            published_at=image.published_at,
            filename=image.filename,
            next_action=image.next_action,
            due_at=image.due_at,
            rejection_reason=image.rejection_reason,
        )


def srcset(image: ImageRecord, widths: tuple[int, ...]) -> str | None:
    """The ``srcset`` of a live photo: each width up to the photo's own (a variant is
    never enlarged, so a wider one would be the same picture under a false width)."""
    if not image.live:
        return None
    reached = [w for w in sorted(widths) if image.width is None or w <= image.width]
    if not reached:  # smaller than every width: the smallest variant is the photo's size
        reached = [min(widths)]
    return ", ".join(f"/photos/{image.id}/image?w={w} {min(w, image.width or w)}w" for w in reached)


class PhotoDetail(Photo):
    capture: Capture | None = Field(
        description="What the camera recorded (never the location), and the upload's "
        "labels; None for a photo stored before capture facts were kept"
    )


class ExportedPhoto(Photo):
    owner: str
    url: str | None = Field(
        description="A fresh URL to read it (signed, or the CDN's); None when it has no "
        "stored image"
    )
    url_expires_at: datetime | None = Field(description="None for a CDN URL or no URL")


# An export's CSV columns, in order: what a spreadsheet of the photos needs.
EXPORT_COLUMNS = (
    "id",
    "owner",
    "state",
    "tier",
    "draft_id",
    "format",
    "width",
    "height",
    "original_size",
    "stored_size",
    "uploaded_at",
    "published_at",
    "next_action",
    "due_at",
    "rejection_reason",
    "url",
    "url_expires_at",
)


class ExportPage(BaseModel):
    items: list[ExportedPhoto]
    cursor: str | None = Field(description="Pass back as ?cursor= for the next page")


class PhotoPage(BaseModel):
    items: list[Photo]
    cursor: str | None = Field(description="Pass back as ?cursor= for the next page")


class PhotoUrl(BaseModel):
    id: str
    url: str
    expires_at: datetime | None = Field(description="None for a CDN URL")


class VariantAnswer(BaseModel):
    """``GET /photos/{id}/image?redirect=false``: the variant and its URL."""

    id: str
    name: str = Field(description="The variant's name: <w>x<h|auto>-<fit>.<format>")
    format: Literal["jpeg", "webp", "avif"]
    content_type: str
    bytes: int
    url: str
    expires_at: datetime | None = Field(description="None for a CDN URL")
    rendered: bool = Field(description="Rendered by this request (false: stored already)")


class PublishRequest(_Body):
    photo_ids: Annotated[list[PhotoId], Field(min_length=1, max_length=100)]


class PublishFailure(BaseModel):
    id: str
    reason: str


class PublishResponse(BaseModel):
    draft_id: str
    updated: list[str]
    failed: list[PublishFailure]


# ---- stats and metrics ----------------------------------------------------------------


class TierStats(_Answer):
    tier: TierName
    backend: str
    photos: int
    bytes: int
    buckets: int
    capacity_bytes: int
    price_per_gb_month: float
    monthly_cost: float


class StatsResponse(_Answer):
    tiers: list[TierStats]
    photos: int
    bytes: int
    monthly_cost: float
    all_hot_monthly_cost: float = Field(description="The same bytes kept in HOT")
    monthly_savings: float = Field(description="all_hot_monthly_cost - monthly_cost")
    baseline: str = Field(description="What monthly_savings is measured against")
    stack_fixed_monthly_cost: float = Field(
        description="The stack's own bill whatever it stores (price book, this deployment)"
    )
    prices_checked: str = Field(description="When the price book's prices were checked")


class TierShare(BaseModel):
    tier: TierName
    backend: str
    bytes: int
    monthly_cost: float
    share_of_bytes: float
    share_of_cost: float


class BreakdownResponse(BaseModel):
    tiers: list[TierShare]


class WorkloadResponse(BaseModel):
    """The deployment's measured workload (``shelflife recommend`` replays it)."""

    days: int
    uploads: int
    published: int
    published_views: int = Field(description="Published photos' URLs asked for (view-days)")
    photos: int
    stored_bytes: int
    uploads_per_month: float
    publish_rate: float
    publish_within_days: int | None = Field(
        description="Age (days) by which 99 % of the publishes happened; null: unknown"
    )
    views_per_published: float
    mean_stored_bytes: int


class LifecycleMetrics(BaseModel):
    days: int
    counts: dict[str, int]


class Recommendation(_Answer):
    severity: Literal["info", "warning", "critical"]
    code: str
    message: str


class RecommendationsResponse(BaseModel):
    items: list[Recommendation]


class TierUsage(_Answer):
    photos: int
    bytes: int


class UsageResponse(_Answer):
    user_id: str
    tiers: dict[str, TierUsage]
    photos: int
    bytes: int
    variants: int = Field(description="Sized variants stored, on HOT (not in the quota)")
    variant_bytes: int
    quota_bytes: int | None
    remaining_bytes: int | None


class BucketsResponse(BaseModel):
    buckets: list[BucketUsageReport]


# ---- admin operations -----------------------------------------------------------------


class RunRequest(_Body):
    # Strict: a flag that decides whether images are deleted takes true or false, not 0.
    dry_run: StrictBool = False


class OldImagesRequest(_Body):
    tier: TierName
    bucket: str | None = Field(default=None, description="One bucket; all of the tier if unset")
    dry_run: StrictBool = True
    threshold_percent: Annotated[float | None, Field(strict=True, gt=0, le=100)] = None


class ReconcileRequest(_Body):
    fix: StrictBool = False
    adopt: StrictBool = False
    run_id: str | None = Field(default=None, description="Continue this incomplete run")


class ImportSourceBody(_Body):
    backend: Literal["s3", "r2", "b2"]
    bucket: Annotated[str, Field(min_length=3, max_length=63)]
    prefix: Annotated[str, Field(max_length=1024)] = ""


class ImportRequest(_Body):
    """A new import (``source`` and whose photos they are), or ``run_id`` to continue
    one; the import function checks the rest (``shelflife.domain.imports``)."""

    source: ImportSourceBody | None = Field(default=None, description="The bucket to import")
    owner: Annotated[str | None, Field(max_length=128)] = Field(
        default=None, description="Every photo's owner (or the owner of keys the pattern misses)"
    )
    owner_pattern: Annotated[str | None, Field(max_length=200)] = Field(
        default=None,
        description="A regular expression with an (?P<owner>...) group, searched in each key",
    )
    compress: StrictBool = Field(
        default=True,
        description="Compress like an upload; false keeps originals where they show the "
        "same picture without their metadata",
    )
    dry_run: StrictBool = Field(default=True, description="Analyse only (the default)")
    run_id: str | None = Field(default=None, description="Continue this incomplete run")


class RedriveRequest(_Body):
    max_messages: Annotated[StrictInt, Field(ge=1, le=1000)] = 100


class OperationResponse(BaseModel):
    """What the function that ran the operation answered (its report)."""

    model_config = ConfigDict(extra="allow")


class ReconcileRun(BaseModel):
    run_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: dict[str, int]
    report: dict[str, Any] | None


class CleanupStatus(BaseModel):
    status: Literal["ok", "warning", "alarm"]
    dead_letters: int | None
    pending: int
    failed_last_hour: int
    reasons: list[str]
    recent_failures: list[dict[str, Any]]


class Health(BaseModel):
    status: Literal["ok"]
    version: str


# ---- pricing (shelflife recommend) ----------------------------------------------------

# Strict, as every number of a body: false is not 0, "1" is not 1.
Usd = Annotated[float, Field(strict=True, ge=0, le=1e9, allow_inf_nan=False)]
StrategyName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_ ().=,%/+-]{1,160}$")]


class StrategyCost(_Body):
    monthly_usd: list[Usd] = Field(min_length=1, max_length=120)
    steady_monthly_usd: Usd


class PricingRequest(_Body):
    """``shelflife recommend``'s pricing of this deployment's measured workload: each
    strategy's monthly cost from the simulator, for the dashboard's chart."""

    choose: StrategyName = Field(description="The configuration recommended")
    measured: dict[
        Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")],
        Annotated[float | None, Field(strict=True, allow_inf_nan=False)],
    ] = Field(max_length=30, description="The measured workload it was priced on")
    strategies: dict[StrategyName, StrategyCost] = Field(min_length=1, max_length=16)


class PricingResponse(PricingRequest):
    priced_at: datetime


class AuditPlaceAnswer(_Answer):
    tier: TierName
    backend: str
    bucket: str


class AuditEntryAnswer(_Answer):
    image_id: str
    at: datetime
    owner: str
    actor: str = Field(description="user:<id>, admin:<id>, or the function that acted")
    action: ChangeAction
    reason: str | None
    before: AuditPlaceAnswer | None = Field(description="Where the image was (tier, bucket)")
    after: AuditPlaceAnswer | None = Field(description="Where it is after the change")


class AuditPage(BaseModel):
    items: list[AuditEntryAnswer]
    cursor: str | None = Field(description="Pass back as ?cursor= for the next page")
