"""Sized variants of a user's photo on demand (``GET /photos/{id}/image``).

A variant is rendered from the stored photo on its first request (``domain.variants``),
stored on the HOT tier and recorded on the photo's record (``ImageRecord.variants``);
later requests are answered from the record alone, with a signed URL. Steps of a first
request, and what a crash between them leaves:

1. read the photo (any tier: a COLD object is read as it is, no restore awaited; a
   large variant counts as a look at the photo, a thumbnail does not);
2. render, and put the variant under a key no one else will ever write
   (``records.variant_key``) in the variants' bucket;
3. add it to the record, conditional on the version read (with the bucket's counters,
   in the same write).

A crash after 2, or a lost race at 3 (the photo deleted, the same variant added by a
concurrent request), leaves an object no record references: the reconciler deletes it
after its grace period, as any orphan. This function never deletes an object: that is
cleanup's, once the record lets go of it (a variant is released with its photo, by
``records.released_objects``), and the reconciler's (invariant 2).

All of a photo's variants share one bucket (the record keeps one place for the
bucket scan). When that bucket stops taking objects (full, draining, missing), the next
variant goes to the least-full HOT bucket and the old ones are let go of in the same
write: they are derived, and are rendered again when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shelflife.domain.auth import Caller
from shelflife.domain.errors import Conflict, RecordNotFound, RejectedImage
from shelflife.domain.records import BucketStatus, ImageRecord, ImageState, Location, Variant
from shelflife.domain.records import variant_key as new_variant_key
from shelflife.domain.settings import TierName
from shelflife.domain.variants import VariantSpec, render, variant_spec
from shelflife.services.photos import PhotoService
from shelflife.services.placement import Placement

_ATTEMPTS = 3


@dataclass(frozen=True)
class VariantUrl:
    url: str
    expires_at: datetime | None
    spec: VariantSpec
    variant: Variant
    rendered: bool  # rendered by this request (False: it was stored already)


class VariantService:
    def __init__(self, photos: PhotoService, placement: Placement | None = None) -> None:
        self.photos = photos
        # Without backends: variants go to recorded HOT buckets only; opening an
        # overflow bucket is the capacity function's (and its permissions').
        self.placement = placement or Placement(
            photos.repository, photos.configured, clock=photos.clock
        )

    def image(
        self,
        caller: Caller,
        image_id: str,
        *,
        width: int,
        height: int | None = None,
        fit: str = "contain",
        format: str = "auto",
        accept: str | None = None,
    ) -> VariantUrl:
        """A signed URL of the photo's variant, rendered and stored first if new. A
        variant at least ``variant_access_width`` wide counts as an access
        (``policy.accessed``), in any tier: the photo is being looked at, and enough
        looks bring a COLD one back to HOT. A thumbnail does not: a gallery showing
        a hundred COLD photos must not restore them all."""
        settings = self.photos.settings
        spec = variant_spec(
            width, height, fit, format, accept=accept, widths=settings.variant_widths
        )
        image = self._live(caller, image_id)
        variant = image.variant(spec.name)
        rendered = variant is None
        if variant is None:
            variant = self._render(caller, image, spec)
        if spec.width >= settings.variant_access_width:
            # A rendering wrote the record since it was read: read it again then.
            read = None if rendered else image
            image = self.photos.record_access(caller, image_id, read=read)
        url, expires_at = self.photos.signed_url(image, variant.location)
        return VariantUrl(url, expires_at, spec, variant, rendered)

    def _live(self, caller: Caller, image_id: str) -> ImageRecord:
        image = self.photos.get(caller, image_id)
        if image.state is not ImageState.ACTIVE or image.location is None:
            raise Conflict(f"photo {image_id!r} is {image.state.value}: it has no stored image")
        return image

    def _check_room(self, image: ImageRecord) -> None:
        limit = self.photos.settings.max_variants_per_photo
        if len(image.variants) >= limit:
            names = ", ".join(v.name for v in image.variants)
            raise Conflict(
                f"photo {image.id!r} has its {limit} variants already ({names}); "
                "ask for one of those"
            )

    def _render(self, caller: Caller, image: ImageRecord, spec: VariantSpec) -> Variant:
        self._check_room(image)
        assert image.location is not None
        source = self.photos.backends.get(image.location.backend.value)
        try:
            data = render(source.get(image.location.bucket, image.location.key).data, spec)
        except RejectedImage as e:  # a kept original Pillow cannot open here
            raise Conflict(f"photo {image.id!r} cannot be rendered at another size: {e}") from e
        place = self._place(image, spec, len(data))
        self.photos.backends.get(place.backend.value).put(
            place.bucket,
            place.key,
            data,
            content_type=spec.mime_type,
            metadata={"image-id": image.id, "owner": image.owner, "variant": spec.name},
            storage_class=self.photos.settings.storage_class(TierName.HOT),
        )
        made = Variant(name=spec.name, location=place, size=len(data))
        return self._record(caller, image.id, made)

    def _place(self, image: ImageRecord, spec: VariantSpec, size: int) -> Location:
        """Where the new variant goes: beside the photo's others while their bucket
        takes objects, else the least-full HOT bucket."""
        key = new_variant_key(image.id, spec.name)
        current = image.variants_bucket
        if current is not None:
            try:
                bucket = self.photos.repository.get_bucket(current.tier.value, current.bucket)
            except RecordNotFound:
                bucket = None
            if bucket is not None and bucket.status is BucketStatus.ACTIVE:
                return current.model_copy(update={"key": key})
        chosen = self.placement.choose(TierName.HOT, size)
        return Location(tier=TierName.HOT, backend=chosen.backend, bucket=chosen.name, key=key)

    def _record(self, caller: Caller, image_id: str, made: Variant) -> Variant:
        """Add ``made`` to the photo's record; a variant of the same name added
        meanwhile is used instead (``made`` is left to the reconciler)."""
        for attempt in range(1, _ATTEMPTS + 1):
            current = self._live(caller, image_id)
            already = current.variant(made.name)
            if already is not None:
                return already
            kept = current.variants
            if current.variants_bucket is not None and (
                current.variants_bucket.bucket,
                current.variants_bucket.tier,
            ) != (made.location.bucket, made.location.tier):
                kept = ()  # their bucket takes no more: let them go (see the module)
            # Others rendered meanwhile may have reached the limit (``made`` is then
            # left to the reconciler, like a lost race).
            self._check_room(current.model_copy(update={"variants": kept}))
            try:
                self.photos.repository.replace_image(
                    current, current.model_copy(update={"variants": (*kept, made)})
                )
            except Conflict:
                if attempt == _ATTEMPTS:
                    raise
                continue
            return made
        raise AssertionError("unreachable")
