"""Sized variants of a stored photo (issue 23, part 2): what a request may ask for and
how a variant is rendered. Pure: bytes in, bytes out, no storage.

A request names a width from a fixed set (``DEFAULT_WIDTHS``, a setting) so variants
cannot be multiplied at will, optionally a height, a fit (``contain``: within the box,
its proportions kept; ``cover``: the box filled, cropped to the centre) and a format
(``auto`` chooses from the request's ``Accept``: AVIF, WebP, else JPEG). The stored
photo is a JPEG (or a kept original); a JPEG is decoded at the smallest DCT scale that
still covers the box (``Image.draft``), so a 320 px variant of a 2000 px photo decodes
a quarter of its pixels.

``services.variants`` stores them and answers ``GET /photos/{id}/image``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageOps

from shelflife.domain.errors import InvalidArgument, RejectedImage
from shelflife.domain.imaging import on_white

Fit = Literal["contain", "cover"]
VariantFormat = Literal["jpeg", "webp", "avif"]
DEFAULT_WIDTHS = (160, 320, 640, 1280, 2000)
_MIME = {"jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif"}
# Encoder settings: visually close at thumbnail sizes, and small.
_JPEG_QUALITY = 82
_WEBP_QUALITY = 80
_AVIF_QUALITY = 60


@dataclass(frozen=True)
class VariantSpec:
    width: int
    height: int | None  # None: the width alone bounds it (contain only)
    fit: Fit
    format: VariantFormat

    @property
    def mime_type(self) -> str:
        return _MIME[self.format]

    @property
    def name(self) -> str:
        """The variant's name within its photo: the same request, the same object."""
        height = self.height if self.height is not None else "auto"
        extension = "jpg" if self.format == "jpeg" else self.format
        return f"{self.width}x{height}-{self.fit}.{extension}"


def negotiate(asked: str, accept: str | None) -> VariantFormat:
    """``asked`` (``auto``, ``jpeg``, ``webp`` or ``avif``) made concrete: ``auto`` is
    the smallest format the client says it takes."""
    if asked != "auto":
        if asked not in _MIME:
            raise InvalidArgument(f"format must be auto, jpeg, webp or avif, got {asked!r}")
        return asked  # type: ignore[return-value]
    offered = (accept or "").lower()
    if "image/avif" in offered:
        return "avif"
    if "image/webp" in offered:
        return "webp"
    return "jpeg"


def variant_spec(
    width: int,
    height: int | None = None,
    fit: str = "contain",
    format: str = "auto",
    *,
    accept: str | None = None,
    widths: tuple[int, ...] = DEFAULT_WIDTHS,
) -> VariantSpec:
    """A request's variant, or ``InvalidArgument`` saying what may be asked."""
    if width not in widths:
        raise InvalidArgument(f"w must be one of {', '.join(map(str, widths))}, got {width}")
    if fit not in ("contain", "cover"):
        raise InvalidArgument(f"fit must be contain or cover, got {fit!r}")
    if height is not None and height not in widths:
        raise InvalidArgument(f"h must be one of {', '.join(map(str, widths))}, got {height}")
    if fit == "cover" and height is None:
        height = width  # a square: what a gallery's thumbnail grid asks for
    return VariantSpec(width, height, fit, negotiate(format, accept))  # type: ignore[arg-type]


def render(data: bytes, spec: VariantSpec) -> bytes:
    """The variant of the stored photo ``data``: never larger than the photo (a
    variant wider than it is the photo's own size), no metadata, sRGB as stored."""
    try:
        image: Image.Image = Image.open(io.BytesIO(data))
        box = (spec.width, spec.height or spec.width * 100)
        if image.format == "JPEG":
            # Decode at the smallest DCT scale (1/2, 1/4, 1/8) still covering what is
            # drawn: the photo's size scaled into the box (a width-bounded box's huge
            # height would keep the full scale), or the crop's source for cover.
            need = _contain_size(image.size, box) if spec.fit == "contain" else None
            image.draft("RGB", need or _cover_source(image.size, box))
        image.seek(0)
        image.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise RejectedImage(f"the stored photo does not decode: {e}", code="corrupt") from e
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # A kept original with transparency (a WebP or GIF an import kept): flattened
        # onto white, as compress flattens what it stores.
        image = on_white(image)
    else:
        image = image.convert("RGB")
    if spec.fit == "cover":
        assert spec.height is not None
        # The box's proportions, shrunk to fit the photo if it is the smaller.
        shrink = min(1.0, image.width / spec.width, image.height / spec.height)
        size = (max(1, round(spec.width * shrink)), max(1, round(spec.height * shrink)))
        image = ImageOps.fit(image, size, Image.Resampling.LANCZOS)
    else:
        image.thumbnail(box, Image.Resampling.LANCZOS, reducing_gap=2.0)
    # Encoders copy metadata from image.info unless told otherwise (AVIF an ICC
    # profile): a variant carries nothing but its pixels (invariant 1).
    image.info.clear()
    out = io.BytesIO()
    if spec.format == "webp":
        image.save(out, "WEBP", quality=_WEBP_QUALITY, method=4)
    elif spec.format == "avif":
        image.save(out, "AVIF", quality=_AVIF_QUALITY)
    else:
        image.save(out, "JPEG", quality=_JPEG_QUALITY, optimize=True, progressive=True)
    return out.getvalue()


def _contain_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The size of ``size`` fitted within ``box`` (its proportions kept)."""
    scale = min(box[0] / size[0], box[1] / size[1])
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _cover_source(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """How large a decode must be to fill ``box`` after cropping to its proportions."""
    scale = max(box[0] / size[0], box[1] / size[1])
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))
