"""Image validation and compression: bytes in, a web-ready image (or a reason) out.

``compress`` never trusts the file name or the declared content type: the format comes
from the bytes' signature, the pixel count is checked before any pixel is decoded (a
decompression bomb is refused from its header), and anything Pillow cannot decode is a
``RejectedImage`` with a reason a person can read.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import re
import struct
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import pillow_heif
from PIL import Image, ImageChops, ImageCms, ImageOps, UnidentifiedImageError

from shelflife.domain.errors import RejectedImage
from shelflife.domain.settings import OutputFormat
from shelflife.domain.strip import strip

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from shelflife.domain.settings import Settings

# HEIC/HEIF (iPhone photos) are decoded through the pillow-heif plug-in.
pillow_heif.register_heif_opener()

_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
    "HEIF": "image/heif",
    "TIFF": "image/tiff",
}
# Signature -> format; HEIF-family files are told apart by their ftyp brand.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
DEFAULT_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "AVIF", "HEIF", "GIF", "TIFF"})
_SRGB = ImageCms.createProfile("sRGB")
_GREY_TOLERANCE = 2
# The downscaling filter, after the DCT-domain shrink of JPEGs (which does the coarse
# work). See README "Benchmarks" for how it was chosen.
RESAMPLING = Image.Resampling.BICUBIC


@dataclass(frozen=True)
class CompressionPolicy:
    max_side_px: int = 2000
    jpeg_quality: int = 85
    output_format: OutputFormat = "JPEG"
    # Animated GIF/WebP: the first frame (default), or the file kept as uploaded.
    keep_animation: bool = False
    max_pixels: int = 100_000_000
    max_bytes: int = 25 * 1024**2
    allowed_formats: frozenset[str] = field(default=DEFAULT_FORMATS)
    # How far under max_side_px a JPEG may land when shrinking it in the DCT domain
    # while decoding gets it there: a 3840 px frame becomes 1920 px from a half-size
    # decode instead of 2000 px from a full decode and a resample (3x the time).
    draft_slack: float = 0.05

    @classmethod
    def from_settings(cls, settings: Settings) -> CompressionPolicy:
        return cls(
            max_side_px=settings.max_side_px,
            jpeg_quality=settings.jpeg_quality,
            output_format=settings.output_format,
            keep_animation=settings.keep_animation,
            max_pixels=settings.max_pixels,
            max_bytes=settings.max_upload_bytes,
            allowed_formats=frozenset(settings.allowed_formats),
        )


@dataclass(frozen=True)
class CompressedImage:
    data: bytes
    width: int
    height: int
    format: str
    source_format: str
    # False when the original was kept: re-encoding would not have made it smaller and
    # it already fit the policy (or the policy keeps animations). Kept means rebuilt
    # from what decoding needs (``shelflife.domain.strip``), never the bytes as uploaded.
    reencoded: bool = True

    @property
    def mime_type(self) -> str:
        return _MIME[self.format]

    @classmethod
    def kept_original(
        cls, data: bytes, width: int, height: int, source_format: str
    ) -> CompressedImage:
        return cls(data, width, height, source_format, source_format, reencoded=False)


def too_large(size: int, limit: int) -> RejectedImage:
    return RejectedImage(f"file is {size} bytes, over the {limit}-byte limit", code="too_large")


# Formats recognised by their signature but not taken: refused as unsupported (what they
# are), not as unknown or corrupt.
_UNSUPPORTED_SIGNATURES = (
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 (codestream)"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL (codestream)"),
    (b"II\xbc", "JPEG XR"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"%PDF", "PDF"),
    (b"BM", "BMP"),
    (b"\x00\x00\x01\x00", "Windows icon (ICO)"),
    (b"qoif", "QOI"),
    (b"v/1\x01", "OpenEXR"),
    (b"DDS ", "DirectDraw Surface (DDS)"),
)
# TIFF photometric interpretations, to name a colour model Pillow cannot decode.
_TIFF_PHOTOMETRIC = {
    0: "white-is-zero grey",
    1: "grey",
    2: "RGB",
    3: "palette",
    4: "transparency mask",
    5: "CMYK",
    6: "YCbCr",
    8: "CIELab",
    9: "ICCLab",
    10: "ITULab",
    32844: "LogL",
    32845: "LogLuv",
    34892: "linear raw",
}


def sniff_format(data: bytes) -> str | None:
    """The image format the bytes really are, from their signature; None if none."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[4:8] == b"ftyp":
        brands = {data[8:12]} | {data[i : i + 4] for i in range(16, min(len(data), 64), 4)}
        if brands & _AVIF_BRANDS:
            return "AVIF"
        if brands & _HEIF_BRANDS:
            return "HEIF"
    return None


# In a JPEG's entropy-coded data a 0xFF byte is followed by 0x00 (a stuffed byte), by a
# restart marker RST0-7 (in order), or by the marker that ends the scan. libjpeg skips
# anything else with a warning Pillow does not surface, and decodes a damaged picture.
# The pattern starts with a literal byte, so the regex engine finds candidates with a
# fast byte search: 1 ms over a 24 MP photo, where a leading "0xFF+" took 20.
_SCAN_MARKER = re.compile(rb"\xff(?!\x00)")
_AFTER_SCAN = {0xC4, 0xCC, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xFE} | set(range(0xE0, 0xF0))


def jpeg_damage(data: bytes) -> str | None:
    """Why the JPEG's compressed image data is damaged, or None if its structure is
    sound (bytes after the end-of-image marker are not this check's business)."""
    offset = 2
    while offset + 2 <= len(data):
        if data[offset] != 0xFF:
            return f"JPEG structure is broken at byte {offset}: expected a marker"
        marker = data[offset + 1]
        if marker == 0xD9:
            return None
        if marker == 0xFF:  # fill byte before a marker
            offset += 1
            continue
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 2 + length
        if marker != 0xDA:
            continue
        restart = 0
        while match := _SCAN_MARKER.search(data, offset):
            at = match.start()
            if at + 1 == len(data):
                return None  # the data ends inside the scan: Pillow reports the truncation
            found = data[at + 1]
            if found == 0xFF:  # a fill byte before a marker
                offset = at + 1
                continue
            if 0xD0 <= found <= 0xD7:
                if found - 0xD0 != restart:
                    return (
                        f"JPEG image data is corrupt: restart marker {found - 0xD0} where "
                        f"{restart} was due, at byte {at} (data is missing)"
                    )
                restart = (restart + 1) % 8
                offset = at + 2
                continue
            if found not in _AFTER_SCAN:
                return (
                    f"JPEG image data is corrupt: byte 0x{found:02X} after 0xFF at byte "
                    f"{at}; the decoded picture would be damaged"
                )
            offset = at
            break
        else:
            return None  # the data ends inside the scan: Pillow reports the truncation
    return None


def _unknown(data: bytes) -> RejectedImage:
    """Why bytes whose signature is none of the accepted formats are refused."""
    head = data[:512].lstrip().lower()
    if not data:
        return RejectedImage("empty file", code="unknown_format")
    if head.startswith(b"<?xml") or b"<svg" in head:
        return RejectedImage(
            "SVG is not accepted: vector images can carry scripts and are not photos",
            code="unsupported_format",
        )
    if head.startswith((b"<!doctype html", b"<html")):
        return RejectedImage("an HTML document, not an image", code="unknown_format")
    for signature, name in _UNSUPPORTED_SIGNATURES:
        if data.startswith(signature):
            return RejectedImage(
                f"{name} images are not supported: upload JPEG, PNG, WebP, AVIF, HEIC, GIF or TIFF",
                code="unsupported_format",
            )
    return RejectedImage(
        "not an image in a known format (the file's signature matches none)",
        code="unknown_format",
    )


def tiff_layout(data: bytes) -> tuple[int, tuple[int, ...], int] | None:
    """The first image's photometric interpretation, bits per sample and samples per
    pixel, read from a TIFF's first directory; None if the header is not sound."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 8:
        return None
    offset = struct.unpack(f"{order}I", data[4:8])[0]
    if offset + 2 > len(data):
        return None
    count = struct.unpack(f"{order}H", data[offset : offset + 2])[0]
    tags: dict[int, tuple[int, ...]] = {}
    for index in range(count):
        at = offset + 2 + 12 * index
        if at + 12 > len(data):
            return None
        tag, kind, number = struct.unpack(f"{order}HHI", data[at : at + 8])
        if kind != 3 or tag not in (258, 262, 277):  # SHORT values of the three tags
            continue
        if number <= 2:
            values = struct.unpack(f"{order}{number}H", data[at + 8 : at + 8 + 2 * number])
        else:
            start = struct.unpack(f"{order}I", data[at + 8 : at + 12])[0]
            if start + 2 * number > len(data) or number > 16:
                return None
            values = struct.unpack(f"{order}{number}H", data[start : start + 2 * number])
        tags[tag] = values
    if 262 not in tags:
        return None
    samples = tags.get(277, (1,))[0]
    return tags[262][0], tags.get(258, (1,) * samples), samples


def _undecodable(source_format: str, data: bytes, error: Exception) -> RejectedImage:
    """Why Pillow could not decode a file of an accepted format: a colour model or depth
    it does not take (said as such), or damage."""
    layout = tiff_layout(data) if source_format == "TIFF" else None
    if layout is not None and isinstance(error, UnidentifiedImageError):
        photometric, bits, samples = layout
        model = _TIFF_PHOTOMETRIC.get(photometric, f"photometric {photometric}")
        depth = "/".join(str(bit) for bit in dict.fromkeys(bits))
        return RejectedImage(
            f"TIFF with {model} colour at {depth} bits per sample ({samples} samples per "
            "pixel) is not supported: convert it to 8-bit RGB or grey",
            code="unsupported_mode",
        )
    return RejectedImage(f"{source_format} file is truncated or corrupt: {error}", code="corrupt")


def accepted_format(data: bytes, policy: CompressionPolicy) -> str:
    """The format of ``data`` if the policy takes it on what its bytes say before any
    decoding (size, signature, the formats allowed, a JPEG's structure); else
    ``RejectedImage`` with the reason ``compress`` gives."""
    if len(data) > policy.max_bytes:
        raise too_large(len(data), policy.max_bytes)
    source_format = sniff_format(data)
    if source_format is None:
        raise _unknown(data)
    if source_format not in policy.allowed_formats:
        raise RejectedImage(f"{source_format} images are not accepted", code="format_not_allowed")
    if source_format == "JPEG" and (damage := jpeg_damage(data)):
        raise RejectedImage(damage, code="corrupt")
    return source_format


def header_size(data: bytes, policy: CompressionPolicy) -> tuple[int, int]:
    """Width and height from the header alone (no pixel decoded), for what a dry run
    can tell: ``accepted_format``'s refusals, an unreadable header, too many pixels."""
    source_format = accepted_format(data, policy)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError as e:
        raise RejectedImage(f"decompression bomb refused: {e}", code="too_many_pixels") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise _undecodable(source_format, data, e) from e
    if width * height > policy.max_pixels:
        raise RejectedImage(
            f"{width}x{height} is {width * height} pixels, over the {policy.max_pixels} limit",
            code="too_many_pixels",
        )
    return width, height


def compress(data: bytes, policy: CompressionPolicy | None = None) -> CompressedImage:
    """Decode, orient, convert to sRGB, flatten, downscale and re-encode ``data``;
    raise ``RejectedImage`` with a reason for input this will not process."""
    policy = policy or CompressionPolicy()
    source_format = accepted_format(data, policy)
    try:
        with warnings.catch_warnings():
            # The policy's own pixel limit is checked below; Pillow's hard limit (twice
            # its warning threshold) still raises DecompressionBombError.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > policy.max_pixels:
            raise RejectedImage(
                f"{width}x{height} is {width * height} pixels, over the {policy.max_pixels} limit",
                code="too_many_pixels",
            )
        if policy.keep_animation and getattr(image, "n_frames", 1) > 1:
            animation = strip(data, source_format)
            if animation is not None:
                return CompressedImage.kept_original(animation, width, height, source_format)
            # A container that cannot be rebuilt with certainty: its first frame.
        target = _fit(width, height, policy.max_side_px)
        if image.format == "JPEG" and target != (width, height):
            # DCT-domain downscale while decoding (1/2, 1/4, 1/8): most of the work of
            # a large JPEG never happens. Pillow picks the smallest scale that is still
            # at least the size asked for.
            floor = _fit(width, height, math.ceil(policy.max_side_px * (1 - policy.draft_slack)))
            image.draft("RGB" if image.mode == "RGB" else None, floor)
            if max(image.size) <= policy.max_side_px:
                target = image.size
        image.seek(0)  # the first frame of an animation
        image.load()
    except RejectedImage:
        raise
    except Image.DecompressionBombError as e:
        raise RejectedImage(f"decompression bomb refused: {e}", code="too_many_pixels") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise _undecodable(source_format, data, e) from e
    fits = _fits_policy(image, source_format, policy)
    image = _resizable(image)
    if image.size != target:
        # Downscale first: orientation, colour conversion and flattening then touch at
        # most max_side² pixels instead of the whole decoded image.
        image = image.resize(target, RESAMPLING, reducing_gap=3.0)
    image = _without_colour(_normalise(image))
    encoded = _encode(image, policy)
    if fits and (kept := _kept_original(data, source_format, len(encoded))) is not None:
        return CompressedImage.kept_original(kept, width, height, source_format)
    return CompressedImage(
        data=encoded,
        width=image.width,
        height=image.height,
        format=policy.output_format,
        source_format=source_format,
    )


_ORIENTATION = 0x0112


def kept_or_compressed(data: bytes, policy: CompressionPolicy | None = None) -> CompressedImage:
    """``data`` as it is, rebuilt from what decoding needs (``strip``), when that shows
    exactly the same picture: a JPEG, GIF or WebP within the policy's limits, with no
    orientation to apply and no colour profile to honour (dropping either would change
    what is seen), decoding to the same pixels. Anything else is ``compress``-ed. For
    an import that asks to keep its originals: their metadata goes all the same."""
    policy = policy or CompressionPolicy()
    source_format = accepted_format(data, policy)  # refused as compress refuses it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                plain = (
                    width * height <= policy.max_pixels
                    and image.getexif().get(_ORIENTATION, 1) == 1
                    and not image.info.get("icc_profile")
                    and (getattr(image, "n_frames", 1) == 1 or policy.keep_animation)
                )
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        plain = False
    if plain and (kept := strip(data, source_format)) is not None:
        try:
            same = _pixels(kept) == _pixels(data)
        except (OSError, SyntaxError, ValueError, EOFError):
            same = False
        if same:
            return CompressedImage.kept_original(kept, width, height, source_format)
    return compress(data, policy)


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = max_side / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fits_policy(image: Image.Image, source_format: str, policy: CompressionPolicy) -> bool:
    """Whether the original bytes could be stored as they are: the output format,
    within size, plain colour, and nothing to strip (no EXIF, no profile, no XMP)."""
    return (
        source_format == policy.output_format
        and max(image.size) <= policy.max_side_px
        and image.mode in ("RGB", "L")
        and not image.info.get("exif")
        and not image.info.get("icc_profile")
        and not image.info.get("xmp")
        and not image.info.get("comment")
    )


def _kept_original(data: bytes, source_format: str, encoded_size: int) -> bytes | None:
    """The upload rebuilt from what decoding needs, if that is no larger than the
    re-encode and decodes to exactly the upload's pixels; else None (re-encode)."""
    kept = strip(data, source_format)
    if kept is None or len(kept) > encoded_size:
        return None
    # Proof, not trust: a segment this code thought optional (an Adobe colour transform,
    # say) would change the picture. Both decodes are at most max_side² pixels.
    try:
        same = _pixels(kept) == _pixels(data)
    except (OSError, SyntaxError, ValueError) as e:
        logger.info("the rebuilt original does not decode (%s): re-encoding", e)
        return None
    return kept if same else None


def _pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.mode, image.size, image.tobytes()


def _resizable(image: Image.Image) -> Image.Image:
    """The image in a mode Pillow's filters resample well (they fall back to nearest
    neighbour for palette and 1-bit images, and not all handle 16-bit)."""
    if image.mode == "P" or image.mode == "PA":
        return image.convert(
            "RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB"
        )
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.point(lambda value: value / 256).convert("L")
    return image


@functools.lru_cache(maxsize=16)
def _to_srgb(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform:
    # Building a transform costs more than applying it to a web-sized image, and a
    # camera or app writes the same profile into every photo: keep the recent ones.
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    # A grey image's profile (a gray gamma curve) still maps into sRGB's RGB: lcms
    # cannot write grey through an RGB profile, so the result is RGB, and grey again
    # once _without_colour has seen that its channels are equal.
    return ImageCms.buildTransform(source, _SRGB, mode, "RGBA" if mode == "RGBA" else "RGB")


def _normalise(image: Image.Image) -> Image.Image:
    """Upright, sRGB, no transparency, in a mode the encoders take (RGB or L)."""
    # In place: the image is compress()'s own, and a copy of a 4 MP image costs 3 ms.
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except (SyntaxError, ValueError, OSError, struct.error) as e:
        # EXIF Pillow cannot parse (found by fuzzing: a TIFF header "I*I\0"): the
        # pixels are fine, the orientation unknown; metadata is stripped anyway.
        logger.info("EXIF not readable, orientation left as decoded: %s", e)
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            converted = ImageCms.applyTransform(image, _to_srgb(icc, image.mode))
            if converted is not None:
                image = converted
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: the pixels are still usable as they are
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        image = on_white(image)
    elif image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    return image


def on_white(image: Image.Image) -> Image.Image:
    """``image``, whose mode has transparency, flattened onto white: what a page
    behind it would most often show, and what a JPEG can hold."""
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, "white")
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _without_colour(image: Image.Image) -> Image.Image:
    """A grey picture in RGB (a scanned print, a 16-bit grey PNG that Pillow opens as
    RGBA) as one grey channel: the JPEG then carries no chroma at all. Channels that
    differ by at most 2 levels are grey to the eye (and to a JPEG decoder's rounding)."""
    if image.mode != "RGB":
        return image
    # A box-reduced copy (about 64 px across) first: a colour photo shows its colour
    # there, and the full-size check then only runs for pictures that look grey.
    sample = image.reduce(max(1, min(image.size) // 64))
    for candidate in (sample, image):
        red, green, blue = candidate.split()
        for one, other in ((red, green), (green, blue)):
            difference = ImageChops.difference(one, other)
            if cast("tuple[int, int]", difference.getextrema())[1] > _GREY_TOLERANCE:
                return image
    return image.convert("L")


def _without_jfif_header(jpeg: bytes) -> bytes:
    """The JPEG without the JFIF APP0 segment libjpeg always writes: 18 bytes of pixel
    density no browser reads (EXIF files never have one either)."""
    if jpeg[2:4] == b"\xff\xe0" and jpeg[6:11] == b"JFIF\x00":
        return jpeg[:2] + jpeg[4 + int.from_bytes(jpeg[4:6], "big") :]
    return jpeg


def _encode(image: Image.Image, policy: CompressionPolicy) -> bytes:
    # Encoders copy some metadata from image.info when the call does not say otherwise
    # (a GIF's comment into the JPEG, an ICC profile into the AVIF): strip it all.
    image.info.clear()
    output = io.BytesIO()
    if policy.output_format == "JPEG":
        image.save(output, "JPEG", quality=policy.jpeg_quality, optimize=True, progressive=True)
        return _without_jfif_header(output.getvalue())
    image.save(output, policy.output_format, quality=policy.jpeg_quality)
    return output.getvalue()
