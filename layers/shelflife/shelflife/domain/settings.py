"""One settings object, built from the environment, failing fast.

Every function builds ``Settings.from_env()`` at module scope, so a missing or invalid
variable stops the cold start with a message naming the variable, not a KeyError in the
middle of a batch. Keyword arguments to ``from_env`` beat the environment.

Variable names follow one rule: ``SHELFLIFE_`` + the field path joined by ``_`` and
upper-cased. ``table_name`` is ``SHELFLIFE_TABLE_NAME``; the ``backend`` of the ``hot``
tier is ``SHELFLIFE_HOT_BACKEND``. Defaults are the seeds' defaults of DESIGN.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from shelflife.domain import pricebook
from shelflife.domain.errors import ConfigurationError

ENV_PREFIX = "SHELFLIFE_"
GIB = 1024**3
MIB = 1024**2


class TierName(StrEnum):
    TEMP = "temp"
    HOT = "hot"
    COLD = "cold"


class BackendName(StrEnum):
    S3 = "s3"
    R2 = "r2"
    B2 = "b2"
    MEMORY = "memory"


# The strictest of the backends' rules (S3's), so a name valid here is valid everywhere;
# 50 characters leave room for the overflow suffixes `-1`, `-2`, ...
BucketBaseName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{4,48}[a-z0-9]$")]
Percent = Annotated[float, Field(gt=0, le=100)]
# Formats as the image's signature tells them (shelflife.domain.imaging.sniff_format).
ImageFormat = Literal["JPEG", "PNG", "WEBP", "AVIF", "HEIF", "GIF", "TIFF"]
OutputFormat = Literal["JPEG", "WEBP", "AVIF"]
# Fields set from one comma-separated variable.
_LIST_FIELDS = ("allowed_formats", "cors_allowed_origins", "variant_widths")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TierSettings(_Frozen):
    """Where a tier lives: its backend, the name of its first bucket, its quota, and
    the price book's offer (an S3 or R2 storage class) it stores on."""

    backend: BackendName
    bucket: BucketBaseName
    quota_bytes: int = Field(default=GIB, gt=0)
    # None: ``DEFAULT_OFFERS`` for the tier and backend, else the backend's offer in
    # the book (``[backends]``).
    offer: str | None = None


_DEFAULT_BACKENDS = {TierName.TEMP: "s3", TierName.HOT: "s3", TierName.COLD: "s3"}
# COLD on S3 is kept in Glacier Instant Retrieval: a fifth of Standard's storage price,
# read in milliseconds, and moved there inside AWS (no data transfer out), which makes
# it cheaper than B2 for an archive fed from S3 (docs/ECONOMICS.md), and needs no keys.
DEFAULT_OFFERS = {(TierName.COLD, BackendName.S3): "s3_glacier_instant"}


class Settings(_Frozen):
    table_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,255}$")]
    region: str = "us-east-1"
    upload_bucket: BucketBaseName | None = None

    temp: TierSettings
    hot: TierSettings
    cold: TierSettings
    # Where published photos are served from, when that is cheaper than serving them
    # from HOT: a bucket family of the HOT tier on another backend (R2, whose egress is
    # free). None: published photos stay where they are. ``serve_published`` says when
    # they move there: "auto" when the deployment's measured views of published photos
    # pay for the move (``shelflife.domain.tuning``), "always", or "never".
    serve: TierSettings | None = None
    serve_published: Literal["auto", "always", "never"] = "auto"

    # Ingest.
    max_upload_bytes: int = Field(default=25 * MIB, gt=0)
    max_pixels: int = Field(default=100_000_000, gt=0)
    jpeg_quality: int = Field(default=85, ge=1, le=95)
    max_side_px: int = Field(default=2000, ge=16)
    allowed_formats: tuple[ImageFormat, ...] = Field(
        default=("JPEG", "PNG", "WEBP", "AVIF", "HEIF", "GIF", "TIFF"), min_length=1
    )
    output_format: OutputFormat = "JPEG"
    # Animated GIF/WebP: stored as uploaded (True) or reduced to the first frame.
    keep_animation: bool = False

    # Lifecycle policy.
    temp_hours: int = Field(default=48, gt=0)
    published_retention_days: int = Field(default=7, gt=0)
    hot_idle_days: int = Field(default=90, gt=0)
    cold_retention_days: int = Field(default=365, gt=0)
    # A COLD image accessed this many times since it was archived goes back to HOT.
    restore_after_accesses: int = Field(default=1, ge=1)
    # Skip an archive whose one-time cost exceeds what it saves (shelflife.domain.costs).
    cost_aware_moves: bool = True
    # Promote TEMP -> HOT without copying when both tiers store on the same offer (a
    # copy, its verification and the deletion after it buy nothing there).
    promote_in_place: bool = True
    # Archive HOT sooner than hot_idle_days when the deployment's own publishes say
    # drafts are known by then (shelflife.domain.tuning): the smallest publish age
    # within which this share of the publishes of the last window days happened, once
    # that many were measured.
    learned_archive: bool = True
    learned_archive_share: float = Field(default=0.99, gt=0, le=1)
    learned_archive_min_publishes: int = Field(default=100, ge=1)
    learned_archive_window_days: int = Field(default=60, ge=1)
    due_shards: int = Field(default=4, ge=1, le=64)
    # The sweep: records per page of the due index, moves in flight at once, and how
    # much of the Lambda's time is left when it stops and hands over to a continuation.
    lifecycle_page_size: int = Field(default=100, ge=1, le=1000)
    lifecycle_workers: int = Field(default=4, ge=1, le=32)
    lifecycle_time_margin_seconds: int = Field(default=60, ge=1)
    # Where an unfinished sweep queues its continuation (the stack's queue); without
    # one, the next scheduled run picks up what is still due.
    lifecycle_continuation_queue_url: str | None = None

    # Capacity.
    cleanup_threshold_percent: Percent = 85
    overflow_threshold_percent: Percent = 95
    cleanup_min_age_days: int = Field(default=30, ge=0)

    # Cleanup (the table's stream). A change whose cleanup failed this many times goes to
    # the dead-letter queue; health warns past the pending and hourly-failure counts.
    cleanup_max_attempts: int = Field(default=3, ge=1, le=100)
    cleanup_dead_letter_queue_url: str | None = None
    cleanup_warning_pending: int = Field(default=20, ge=0)
    cleanup_warning_failed_per_hour: int = Field(default=10, ge=0)
    cleanup_task_days: int = Field(default=14, ge=1)

    # Reconciliation: orphaned objects younger than the grace period are reported, never
    # deleted (an upload or a move may be writing them); at most so many deletions a run.
    reconcile_grace_hours: int = Field(default=48, ge=1)
    reconcile_max_deletes: int = Field(default=1000, ge=0)

    # The API. Admin routes need the group (Cognito's ``cognito:groups`` claim, or a
    # ``groups`` claim) or the scope in the caller's token.
    admin_group: str = Field(default="admin", min_length=1)
    admin_scope: str = Field(default="shelflife/admin", min_length=1)
    # A draft's signed URL, and the presigned POST of an upload, expire after this;
    # callers may ask for less, never more.
    url_expiry_seconds: int = Field(default=900, ge=1, le=3600)
    # A published photo is public by its owner's choice: its URL may last longer, so a
    # client (a page that embeds it) asks the API once a day, not once a view (the
    # simulator prices a view-day as one request). At most 7 days, a presigned URL's
    # limit; on S3 a URL signed with the function's temporary credentials ends with
    # them, within hours (R2, B2 and the CDN are not so limited).
    published_url_expiry_seconds: int = Field(default=86400, ge=1, le=7 * 86400)
    upload_expiry_seconds: int = Field(default=900, ge=60, le=3600)
    # Photo URLs from a CDN in front of the buckets (``<base>/<key>``) instead of
    # signed URLs.
    cdn_base_url: Annotated[str, StringConstraints(pattern=r"^https://[^\s]+[^/]$")] | None = None
    # Stored bytes per user; None for no quota.
    user_quota_bytes: int | None = Field(default=None, gt=0)
    # The widths (and heights) a sized variant may be asked at (``domain.variants``):
    # a fixed set, so a client cannot multiply the stored variants at will.
    variant_widths: tuple[Annotated[int, Field(ge=16, le=4096)], ...] = Field(
        default=(160, 320, 640, 1280, 2000), min_length=1
    )
    # Variants one photo may have; a request for another is refused, naming the
    # ones there are (each is an object and a few bytes on every write of the record).
    max_variants_per_photo: int = Field(default=12, ge=1, le=100)
    # A variant at least this wide is a look at the photo and counts as an access, as
    # its URL does (a COLD photo comes back to HOT after restore_after_accesses); a
    # smaller one is a thumbnail in a grid, and browsing a gallery must not restore
    # every photo it shows.
    variant_access_width: int = Field(default=1280, ge=1)
    # The functions the API's admin routes run (the stack's); unset, those routes
    # answer 503.
    lifecycle_function_name: str | None = None
    capacity_function_name: str | None = None
    cleanup_function_name: str | None = None
    import_function_name: str | None = None
    # How long an admin run started from the API may take before it stops and hands
    # over (API Gateway answers for at most 30 seconds).
    api_run_seconds: int = Field(default=20, ge=1, le=28)

    # How long records stay after they stop mattering: soft-deleted images (the object
    # is gone, the record answers "what happened to it?") and run records (history).
    deleted_record_days: int = Field(default=30, ge=1)
    run_record_days: int = Field(default=30, ge=1)
    # The audit trail (``shelflife.domain.audit``): its table (None: no trail is
    # written, as in a deployment from before it) and how long an entry stays.
    audit_table_name: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,255}$")] | None
    ) = None
    audit_retention_days: int = Field(default=365, ge=1, le=3650)

    # Overrides of the price book (``shelflife/domain/prices.toml``), by backend: the
    # storage price per GB-month, data transfer out per GB (paid by a move that leaves
    # the provider) and the minimum storage duration charged on early deletion. None:
    # the book's price for the backend's offer.
    price_s3: float | None = Field(default=None, ge=0)
    price_r2: float | None = Field(default=None, ge=0)
    price_b2: float | None = Field(default=None, ge=0)
    egress_s3: float | None = Field(default=None, ge=0)
    egress_r2: float | None = Field(default=None, ge=0)
    egress_b2: float | None = Field(default=None, ge=0)
    min_storage_days_s3: int | None = Field(default=None, ge=0)
    min_storage_days_r2: int | None = Field(default=None, ge=0)
    min_storage_days_b2: int | None = Field(default=None, ge=0)

    # Endpoints and credentials. In Lambda the R2/B2 keys come from an SSM Parameter
    # Store SecureString (``credentials_parameter``, its name); locally and in tests
    # they can be set directly.
    s3_endpoint_url: str | None = None
    # An S3-compatible endpoint standing in for R2's (the local stack's moto server).
    r2_endpoint_url: str | None = None
    r2_account_id: str | None = None
    r2_access_key_id: SecretStr | None = None
    r2_secret_access_key: SecretStr | None = None
    b2_application_key_id: SecretStr | None = None
    b2_application_key: SecretStr | None = None
    credentials_parameter: str | None = None
    # The local stack only: B2 is b2sdk's in-memory simulator, one per process.
    b2_simulated: bool = False
    cors_allowed_origins: tuple[str, ...] = ()
    # The template's Monitoring parameter: what the stack's fixed bill includes.
    monitoring: Literal["lean", "full"] = "lean"

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Self:
        if self.cleanup_threshold_percent >= self.overflow_threshold_percent:
            raise ValueError(
                f"{env_name('cleanup_threshold_percent')} ({self.cleanup_threshold_percent}) "
                f"must be below {env_name('overflow_threshold_percent')} "
                f"({self.overflow_threshold_percent})"
            )
        return self

    @model_validator(mode="after")
    def _offers_fit_their_backends(self) -> Self:
        book = pricebook.book()
        if self.serve is not None and self.serve.backend is self.hot.backend:
            raise ValueError(
                f"{env_name('serve', 'backend')}: published photos are served from "
                f"another backend than HOT's ({self.hot.backend.value}); unset it to "
                "serve them from HOT"
            )
        for tier, backend in self.shelves():
            settings = self.shelf(tier, backend)
            field = "serve" if settings is self.serve else tier.value
            name = self.offer_name(tier, backend)
            if name is None:
                continue
            if name not in book.offers:
                raise ValueError(
                    f"{env_name(field, 'offer')}: no offer {name!r} in the price book "
                    f"(one of {', '.join(sorted(book.offers))})"
                )
            if settings.backend is BackendName.MEMORY:
                continue  # the in-memory store stands in for any provider
            provider = book.for_backend(settings.backend.value).provider
            if book.offer(name).provider != provider:
                raise ValueError(
                    f"{env_name(field, 'offer')}: {name!r} is not an offer of "
                    f"{settings.backend.value} ({provider})"
                )
        return self

    def tier(self, name: TierName | str) -> TierSettings:
        tier: TierSettings = getattr(self, TierName(name).value)
        return tier

    def shelf(self, tier: TierName | str, backend: BackendName | str | None = None) -> TierSettings:
        """The settings of ``tier``'s buckets on ``backend`` (None: the tier's own):
        the serving buckets for HOT on the serve backend, else the tier's."""
        if (
            self.serve is not None
            and TierName(tier) is TierName.HOT
            and backend is not None
            and BackendName(backend) is self.serve.backend
        ):
            return self.serve
        return self.tier(tier)

    def shelves(self) -> list[tuple[TierName, BackendName]]:
        """Every family of buckets the store places into: each tier on its backend, and
        the serving buckets."""
        found = [(tier, self.tier(tier).backend) for tier in TierName]
        if self.serve is not None:
            found.append((TierName.HOT, self.serve.backend))
        return found

    def serves_published(self) -> bool:
        """Whether published photos move to the serving buckets (``serve_published``
        as the lifecycle tuned it: "auto" is decided from measured views, and means
        "not yet" until then)."""
        return self.serve is not None and self.serve_published == "always"

    def offer_name(
        self, tier: TierName | str, backend: BackendName | str | None = None
    ) -> str | None:
        """The price book's offer ``tier`` stores on (on ``backend``: the serving
        buckets' for HOT on the serve backend); None: the in-memory store with no offer
        set, priced at nothing."""
        settings = self.shelf(tier, backend)
        if settings.offer is not None:
            return settings.offer
        if settings.backend is BackendName.MEMORY:
            return None
        default = DEFAULT_OFFERS.get((TierName(tier), settings.backend))
        return default or pricebook.book().backends[settings.backend.value]

    def stack_shape(self) -> pricebook.Shape:
        """What this deployment's stack has that costs by itself: the R2/B2 keys'
        parameter (a tier on R2 or B2) and full monitoring."""
        return pricebook.Shape(
            credentials=any(
                backend in (BackendName.R2, BackendName.B2) for _, backend in self.shelves()
            ),
            full_monitoring=self.monitoring == "full",
        )

    def promotes_in_place(self) -> bool:
        """Whether a promotion leaves the object where it is: allowed, and TEMP and
        HOT on the same backend and offer."""
        temp, hot = self.tier(TierName.TEMP), self.tier(TierName.HOT)
        return (
            self.promote_in_place
            and temp.backend is hot.backend
            and self.offer_name(TierName.TEMP) == self.offer_name(TierName.HOT)
        )

    def storage_class(
        self, tier: TierName | str, backend: BackendName | str | None = None
    ) -> str | None:
        """The storage class objects of ``tier`` (on ``backend``) are written with
        (None: the provider's default)."""
        name = self.offer_name(tier, backend)
        return None if name is None else pricebook.book().offer(name).storage_class

    def tier_price_per_gb_month(
        self, tier: TierName | str, backend: BackendName | str | None = None
    ) -> float:
        """Storage in ``tier`` (on ``backend``): its offer's price, or the backend's
        override (``SHELFLIFE_PRICE_<BACKEND>``) when the tier stores on the backend's
        own offer."""
        name = self.offer_name(tier, backend)
        if name is None:
            return 0.0
        on = self.shelf(tier, backend).backend
        if name == pricebook.book().backends.get(on.value):
            return self.price_per_gb_month(on)
        return pricebook.book().offer(name).storage_per_gb_month

    def price_per_gb_month(self, backend: BackendName | str) -> float:
        """Storage on ``backend``: the setting if set, else the price book's."""
        return float(self._priced(backend, "price", "storage_per_gb_month"))

    def egress_per_gb(self, backend: BackendName | str) -> float:
        return float(self._priced(backend, "egress", "egress_per_gb"))

    def min_storage_days(self, backend: BackendName | str) -> int:
        return int(self._priced(backend, "min_storage_days", "min_days"))

    def _priced(self, backend: BackendName | str, setting: str, field: str) -> float:
        name = BackendName(backend)
        if name is BackendName.MEMORY:
            return 0
        override: float | None = getattr(self, f"{setting}_{name.value}")
        if override is not None:
            return override
        value: float = getattr(pricebook.book().for_backend(name.value), field)
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build the settings from ``environ`` (default ``os.environ``); ``overrides``
        (field names, or a dict per tier) win over the environment."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for field in cls.model_fields:
            if field in TierName._value2member_map_ or field == "serve":
                tier = {
                    sub: env[env_name(field, sub)]
                    for sub in TierSettings.model_fields
                    if env_name(field, sub) in env
                }
                if field == "serve":
                    # Optional: set by its backend (the template leaves it empty for none).
                    if tier.get("backend"):
                        raw[field] = tier
                    continue
                tier.setdefault("backend", _DEFAULT_BACKENDS[TierName(field)])
                raw[field] = tier
            elif env_name(field) in env:
                raw[field] = env[env_name(field)]
        for field in _LIST_FIELDS:
            if field in raw:
                raw[field] = tuple(item.strip() for item in raw[field].split(",") if item.strip())
        if "allowed_formats" in raw:
            raw["allowed_formats"] = tuple(name.upper() for name in raw["allowed_formats"])
        if "region" not in raw and "AWS_REGION" in env:
            raw["region"] = env["AWS_REGION"]
        for field, value in overrides.items():
            if isinstance(value, Mapping) and isinstance(raw.get(field), dict):
                raw[field] = {**raw[field], **value}
            else:
                raw[field] = value
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            raise ConfigurationError(_describe(e)) from e


def env_name(*path: str) -> str:
    """The environment variable that sets the field at ``path``."""
    return ENV_PREFIX + "_".join(path).upper()


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        # Positions inside a list variable (ints) are not part of the variable's name.
        path = [part for part in item["loc"] if isinstance(part, str)]
        where = env_name(*path) if path else "settings"
        problems.append(f"{where}: {item['msg']}")
    return "invalid configuration: " + "; ".join(problems)
