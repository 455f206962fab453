"""Capture metadata: what the camera says about a photo, kept in the table while the
stored image keeps nothing (invariant 1), and the small labels a client attaches.

Read from the upload's EXIF before it is stripped, without decoding the pixels. Only
non-identifying facts are kept: when it was taken, the camera's make and model, the
lens, exposure time, aperture, ISO, focal length, the original dimensions and
orientation. Never the location (invariant 1: it never leaves the upload), never
serial numbers, owner or artist names, maker notes or free-text comments.

Labels: at most ``MAX_LABELS`` key/value pairs, sent with ``POST /uploads`` and carried
by the upload as object metadata (``x-amz-meta-label-<key>``, signed into the
presigned POST, so an upload carries no other).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from shelflife.domain.errors import InvalidArgument

# The labels' limits: S3 keeps at most 2 KB of user metadata, the draft id among it.
MAX_LABELS = 10
MAX_LABEL_BYTES = 1500
LABEL_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
LABEL_VALUE = re.compile(r"^[\x20-\x7e]{0,256}$")  # printable ASCII: S3 metadata is
LABEL_PREFIX = "label-"

# EXIF tags (Pillow's ExifTags numbers): IFD0 and the Exif sub-IFD.
_MAKE, _MODEL, _ORIENTATION = 0x010F, 0x0110, 0x0112
_EXIF_IFD = 0x8769
_EXPOSURE, _F_NUMBER, _ISO, _TAKEN, _FOCAL, _LENS = (
    0x829A,
    0x829D,
    0x8827,
    0x9003,
    0x920A,
    0xA434,
)
_TEXT_LIMIT = 64


class Capture(BaseModel):
    """What the table keeps of a photo's capture (every field optional: a PNG has
    none of them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    taken_at: str | None = Field(default=None, description="The camera's clock, no zone")
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    exposure_time: str | None = Field(default=None, description="seconds, as 1/250")
    f_number: float | None = None
    iso: int | None = None
    focal_length_mm: float | None = None
    width: int | None = Field(default=None, description="The upload's, before resizing")
    height: int | None = None
    orientation: int | None = Field(default=None, ge=1, le=8)
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self == Capture()


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """``labels`` if they keep the limits; ``InvalidArgument`` naming the one that
    does not."""
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"at most {MAX_LABELS} labels, got {len(labels)}")
    for key, value in labels.items():
        if not LABEL_KEY.match(key):
            raise InvalidArgument(
                f"label {key!r}: 1-32 lowercase letters, digits, _ or - (starting with a "
                "letter or digit)"
            )
        if not isinstance(value, str) or not LABEL_VALUE.match(value):
            raise InvalidArgument(f"label {key!r}: at most 256 printable ASCII characters")
    size = sum(len(LABEL_PREFIX) + len(k) + len(v) for k, v in labels.items())
    if size > MAX_LABEL_BYTES:
        raise InvalidArgument(f"labels take {size} bytes; at most {MAX_LABEL_BYTES}")
    return dict(labels)


def label_metadata(labels: Mapping[str, str]) -> dict[str, str]:
    """The upload's object metadata for ``labels``."""
    return {f"{LABEL_PREFIX}{key}": value for key, value in check_labels(labels).items()}


def labels_of(metadata: Mapping[str, str]) -> dict[str, str]:
    """The labels an upload's metadata carries; any that break the limits (not signed
    by this store) are left out."""
    found = {
        name.removeprefix(LABEL_PREFIX): value
        for name, value in metadata.items()
        if name.startswith(LABEL_PREFIX)
    }
    try:
        return check_labels(found)
    except InvalidArgument:
        return {}


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore")
    if not isinstance(value, str):
        return None
    text = "".join(ch for ch in value if ch.isprintable()).strip().strip("\x00")
    return text[:_TEXT_LIMIT] or None


def _number(value: Any) -> float | None:
    try:
        number = float(Fraction(str(value))) if not isinstance(value, int | float) else value
        number = float(number)
    except (ValueError, ZeroDivisionError, TypeError):
        return None
    return round(number, 3) if number == number and 0 < number < 1e6 else None


def _exposure(value: Any) -> str | None:
    seconds = _number(value)
    if seconds is None:
        return None
    if seconds < 1:
        return f"1/{round(1 / seconds)}"
    return f"{seconds:g}"


def _taken(value: Any) -> str | None:
    text = _text(value)
    match = re.fullmatch(r"(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})", text or "")
    if not match:
        return None
    y, mo, d, h, mi, s = match.groups()
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}"


def capture_facts(data: bytes, labels: Mapping[str, str] | None = None) -> Capture:
    """The capture facts of an upload (header only: no pixel is decoded), with its
    labels. An upload Pillow cannot read has none (ingest refuses it anyway)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            exif = image.getexif()
            sub = exif.get_ifd(_EXIF_IFD)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return Capture(labels=dict(labels or {}))
    iso = sub.get(_ISO)
    if isinstance(iso, tuple | list):
        iso = iso[0] if iso else None
    orientation = exif.get(_ORIENTATION)
    return Capture(
        taken_at=_taken(sub.get(_TAKEN)),
        camera_make=_text(exif.get(_MAKE)),
        camera_model=_text(exif.get(_MODEL)),
        lens=_text(sub.get(_LENS)),
        exposure_time=_exposure(sub.get(_EXPOSURE)),
        f_number=_number(sub.get(_F_NUMBER)),
        iso=int(iso) if isinstance(iso, int) and 0 < iso < 10**7 else None,
        focal_length_mm=_number(sub.get(_FOCAL)),
        width=width,
        height=height,
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None,
        labels=dict(labels or {}),
    )
