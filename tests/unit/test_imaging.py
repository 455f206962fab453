"""compress() on every file of the shared corpus, with the properties its README asks."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat

from shelflife.domain.errors import RejectedImage
from shelflife.domain.imaging import (
    CompressionPolicy,
    compress,
    jpeg_damage,
    kept_or_compressed,
    sniff_format,
)
from shelflife.domain.settings import OutputFormat
from shelflife.domain.strip import strip_gif, strip_jpeg
from tests.support.corpus import corpus_file, corpus_names

RASTER = [
    name
    for name in corpus_names(
        "photos", "camera", "orientation", "colour", "alpha", "animated", "formats"
    )
    if not name.endswith(".svg")
]
GPS_IFD, ORIENTATION = 0x8825, 0x0112


def metadata_segments(jpeg: bytes) -> list[int]:
    """The markers of the APPn and COM segments before the image data (where EXIF, GPS,
    XMP, ICC profiles and comments live)."""
    found, offset = [], 2
    while offset + 4 <= len(jpeg) and jpeg[offset] == 0xFF:
        marker = jpeg[offset + 1]
        if marker == 0xDA:  # start of scan: only entropy-coded data follows
            break
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            found.append(marker)
        offset += 2 + int.from_bytes(jpeg[offset + 2 : offset + 4], "big")
    return found


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("name", RASTER)
def test_raster_files_become_small_clean_progressive_jpegs(name: str) -> None:
    result = compress(corpus_file(name))
    image = decoded(result.data)

    assert (result.format, result.mime_type, image.format) == ("JPEG", "image/jpeg", "JPEG")
    assert max(image.size) <= 2000
    assert image.size == (result.width, result.height)
    assert image.mode in ("RGB", "L")
    assert image.info.get("progressive") or image.info.get("progression")
    assert not image.getexif()  # no GPS, no camera data, no orientation tag
    assert "icc_profile" not in image.info
    if result.reencoded:
        assert metadata_segments(result.data) == []  # no comment, XMP or JFIF either


METADATA_CARRIERS = [
    "animated/animated-loop-3.gif",  # a comment
    "camera/canon_hdr_NO.jpg",  # EXIF with GPS
    "orientation/Landscape_6.jpg",  # EXIF orientation and an ICC profile
    "alpha/16-bit-grey-alpha.png",  # XMP and a grey ICC profile
]


@pytest.mark.parametrize("output_format", ["JPEG", "WEBP", "AVIF"])
@pytest.mark.parametrize("name", METADATA_CARRIERS)
def test_no_metadata_survives_in_any_output_format(name: str, output_format: OutputFormat) -> None:
    result = compress(corpus_file(name), CompressionPolicy(output_format=output_format))
    image = decoded(result.data)

    assert image.format == output_format
    assert not image.getexif()
    assert not {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment"} & set(image.info)


def grey_photo_in_rgb() -> bytes:
    buffer = io.BytesIO()
    decoded(corpus_file("photos/concert.jpg")).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [lambda: corpus_file("alpha/16-bit-grey-alpha.png"), grey_photo_in_rgb],
    ids=["16-bit grey PNG with alpha", "grey photo saved as RGB"],
)
def test_grey_pictures_are_stored_as_one_grey_channel(data: Callable[[], bytes]) -> None:
    assert decoded(data()).mode in ("RGB", "RGBA")  # Pillow opens them in colour

    result = decoded(compress(data()).data)

    assert result.mode == "L"


def test_a_nearly_grey_picture_keeps_its_colour() -> None:
    # The GIF's palette is dark greys with a tint of up to 5 levels: colour, just.
    result = decoded(compress(corpus_file("animated/animated-loop-3.gif")).data)

    assert result.mode == "RGB"


@pytest.mark.parametrize("name", ["camera/canon_hdr_NO.jpg", "camera/DSCN0010.jpg"])
def test_gps_never_survives(name: str) -> None:
    original = decoded(corpus_file(name)).getexif()
    assert original.get_ifd(GPS_IFD)  # the corpus file does carry GPS

    result = decoded(compress(corpus_file(name)).data)

    assert not result.getexif().get_ifd(GPS_IFD)
    assert metadata_segments(compress(corpus_file(name)).data) == []  # not even JFIF


@pytest.mark.parametrize("kind", ["Landscape", "Portrait"])
def test_every_orientation_gives_the_same_upright_picture(kind: str) -> None:
    outputs = [
        decoded(compress(corpus_file(f"orientation/{kind}_{n}.jpg")).data) for n in range(1, 9)
    ]
    reference = outputs[0].convert("L")

    for n, output in enumerate(outputs, start=1):
        assert output.size == reference.size, f"{kind}_{n}"
        difference = ImageStat.Stat(ImageChops.difference(output.convert("L"), reference)).mean[0]
        assert difference < 6, f"{kind}_{n} differs by {difference:.1f}"
    assert (reference.width > reference.height) is (kind == "Landscape")


def test_cmyk_is_converted_to_srgb_not_inverted() -> None:
    data = corpus_file("colour/Channel_digital_image_CMYK_color.jpg")
    plain = decoded(data).convert("RGB")

    result = decoded(compress(data).data)

    assert result.mode == "RGB"
    difference = ImageStat.Stat(ImageChops.difference(result, plain)).mean
    assert max(difference) < 40  # an inverted picture differs by ~128 per channel


def test_a_grey_profile_is_applied_and_the_picture_stays_grey() -> None:
    data = corpus_file("photos/concert.jpg")  # grey, with a "Gray Gamma 2.2" profile
    plain = decoded(data)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(plain.info["icc_profile"]))
    managed = ImageCms.profileToProfile(
        plain, profile, ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    assert managed is not None

    result = decoded(compress(data).data)

    assert result.mode == "L"
    to_managed = ImageStat.Stat(ImageChops.difference(result, managed.convert("L"))).mean[0]
    to_plain = ImageStat.Stat(ImageChops.difference(result, plain)).mean[0]
    assert to_managed < to_plain / 2, (to_managed, to_plain)


def test_transparency_is_flattened_onto_white() -> None:
    result = decoded(compress(corpus_file("alpha/full-transparent.png")).data)

    assert ImageStat.Stat(result.convert("RGB")).mean == pytest.approx([255, 255, 255], abs=1)


def test_animations_give_the_first_frame_or_are_kept() -> None:
    data = corpus_file("animated/animated-loop-3.gif")
    first = decoded(data).convert("RGB")

    still = compress(data)
    kept = compress(data, CompressionPolicy(keep_animation=True))

    assert ImageStat.Stat(ImageChops.difference(decoded(still.data), first)).mean[0] < 8
    # Kept means rebuilt from what decoding needs: the same frames, no comment.
    assert (kept.data, kept.format, kept.reencoded) == (strip_gif(data), "GIF", False)
    frames = [getattr(decoded(gif), "n_frames", 1) for gif in (kept.data, data)]
    assert frames[0] == frames[1] > 1


def jpeg_of_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    photo = decoded(corpus_file("photos/2569067123_aca715a2ee_o.jpg"))
    photo.resize((width, height)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("size", "slack", "expected"),
    [
        ((3840, 2160), 0.05, (1920, 1080)),  # a half-size decode is within 5 % of 2000
        ((3840, 2160), 0.0, (2000, 1125)),  # no slack: full decode and resample
        ((3600, 2400), 0.05, (2000, 1333)),  # 1800 px would be 10 % under: resample
        ((4032, 3024), 0.05, (2000, 1500)),  # 2016 px from the half-size decode, resampled
    ],
)
def test_jpegs_shrink_while_decoding_within_the_slack(
    size: tuple[int, int], slack: float, expected: tuple[int, int]
) -> None:
    result = compress(jpeg_of_size(*size), CompressionPolicy(draft_slack=slack))

    assert (result.width, result.height) == expected
    assert decoded(result.data).size == expected


def test_large_photos_are_downscaled_to_the_longest_side() -> None:
    result = compress(corpus_file("photos/2569067123_aca715a2ee_o.jpg"))

    assert (result.width, result.height) == (2000, 1633)
    assert len(result.data) < len(corpus_file("photos/2569067123_aca715a2ee_o.jpg"))


@pytest.mark.parametrize(
    ("name", "reason", "code"),
    [
        ("broken/corrupt-header.jpg", "corrupt", "corrupt"),
        ("broken/truncated.jpg", "truncated", "corrupt"),
        ("broken/corrupted.jpg", "image data is corrupt", "corrupt"),
        ("formats/check.svg", "SVG", "unsupported_format"),
    ],
)
def test_broken_and_unwanted_files_are_rejected_with_a_reason(
    name: str, reason: str, code: str
) -> None:
    with pytest.raises(RejectedImage, match=reason) as rejected:
        compress(corpus_file(name))
    assert rejected.value.code == code


def test_formats_the_store_does_not_take_are_named_not_called_corrupt() -> None:
    # Refused as "signature matches none" and "truncated or corrupt" before issue 19.
    from shelflife_tools.prove.hostile import _jpeg2000, cielab_tiff

    with pytest.raises(RejectedImage, match="JPEG 2000 images are not supported") as jp2:
        compress(_jpeg2000())
    with pytest.raises(RejectedImage, match="CIELab colour at 16 bits") as lab:
        compress(cielab_tiff(8, 8))
    assert (jp2.value.code, lab.value.code) == ("unsupported_format", "unsupported_mode")


def test_8_bit_cielab_is_converted_not_refused() -> None:
    # TIFF keeps a* and b* signed; white is L 100, a 0, b 0 (bytes FF 00 00).
    from shelflife_tools.prove.hostile import cielab_tiff

    white = cielab_tiff(8, 8, bits=8, pixel=b"\xff\x00\x00")

    result = decoded(compress(white).data).convert("RGB")

    assert result.getpixel((4, 4)) == pytest.approx((255, 255, 255), abs=2)


def test_lost_jpeg_data_is_found_by_its_restart_markers() -> None:
    buffer = io.BytesIO()
    decoded(corpus_file("photos/flowers.jpeg")).save(buffer, "JPEG", restart_marker_rows=1)
    sound = buffer.getvalue()
    cut_from, cut_to = sound.find(b"\xff\xd3"), sound.find(b"\xff\xd5")

    assert jpeg_damage(sound) is None
    assert "restart marker 5 where 3 was due" in str(jpeg_damage(sound[:cut_from] + sound[cut_to:]))
    # Pillow alone decodes the damaged file without a word.
    decoded(sound[:cut_from] + sound[cut_to:])


def test_fill_bytes_are_sound_and_stray_markers_are_damage() -> None:
    sound = corpus_file("camera/jolla.jpg")
    end = sound.rindex(b"\xff\xd9")
    scan = sound.index(b"\xff\xda")
    stuffed = sound.index(b"\xff\x00", scan)

    assert jpeg_damage(sound[:end] + b"\xff\xff\xff" + sound[end:]) is None
    damaged = sound[: stuffed + 1] + b"\x12" + sound[stuffed + 2 :]
    assert f"byte 0x12 after 0xFF at byte {stuffed}" in str(jpeg_damage(damaged))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "HTML"),
        (b"hello, I am a text file pretending to be a .jpg", "signature"),
        (bytes(range(256)) * 10, "signature"),
    ],
)
def test_what_is_not_an_image_is_named(data: bytes, reason: str) -> None:
    with pytest.raises(RejectedImage, match=reason):
        compress(data)


def test_limits_are_checked_before_decoding() -> None:
    data = corpus_file("photos/flowers.jpeg")

    with pytest.raises(RejectedImage, match="over the 1000-byte limit") as too_large:
        compress(data, CompressionPolicy(max_bytes=1000))
    assert too_large.value.code == "too_large"
    with pytest.raises(RejectedImage, match="pixels, over"):
        compress(data, CompressionPolicy(max_pixels=1920 * 1080 - 1))
    with pytest.raises(RejectedImage, match="not accepted"):
        compress(data, CompressionPolicy(allowed_formats=frozenset({"PNG"})))


def test_the_format_comes_from_the_bytes() -> None:
    assert sniff_format(corpus_file("alpha/with-alpha.png")) == "PNG"
    assert sniff_format(corpus_file("formats/pitm.avif")) == "AVIF"
    assert sniff_format(corpus_file("formats/IMG_5195.HEIC")) == "HEIF"
    assert sniff_format(corpus_file("formats/4.webp")) == "WEBP"
    assert sniff_format(corpus_file("formats/G31D.TIF")) == "TIFF"


def test_an_already_optimal_jpeg_is_kept_as_it_is() -> None:
    buffer = io.BytesIO()
    decoded(corpus_file("photos/flowers.jpeg")).resize((640, 360)).save(
        buffer, "JPEG", quality=40, progressive=True, optimize=True
    )
    small = buffer.getvalue()

    result = compress(small)

    # Kept, rebuilt without the JFIF header Pillow wrote: the same pixels, fewer bytes.
    assert (result.data, result.reencoded) == (strip_jpeg(small), False)
    assert b"JFIF" in small
    assert b"JFIF" not in result.data
    assert decoded(result.data).tobytes() == decoded(small).tobytes()
    assert (result.width, result.height) == (640, 360)


def test_exif_pillow_cannot_parse_leaves_the_pixels_usable() -> None:
    # Found by `make fuzz`: a TIFF header "I*I\0" in the EXIF block made exif_transpose
    # raise SyntaxError out of compress (which would fail ingest's batch).
    from shelflife_tools.prove.hostile import _broken_exif_jpeg

    data = _broken_exif_jpeg()
    assert b"Exif\x00\x00I*I\x00" in data

    result = compress(data)

    assert (result.width, result.height) == (2000, 33)  # orientation unknown: as decoded
    assert b"Exif" not in result.data


# ---- kept_or_compressed: an import that keeps its originals ------------------------


@pytest.mark.parametrize("name", [n for n in RASTER if not n.startswith("animated/")])
def test_kept_originals_lose_their_metadata_and_keep_their_picture(name: str) -> None:
    data = corpus_file(name)
    with Image.open(io.BytesIO(data)) as original:
        plain = (
            original.format in ("JPEG", "GIF", "WEBP")
            and original.getexif().get(ORIENTATION, 1) == 1
            and not original.info.get("icc_profile")
        )
        size = original.size
    result = kept_or_compressed(data)
    if not plain:
        # Its orientation or colour profile would be lost with its metadata: compressed.
        assert result.reencoded
        assert result == compress(data)
        return
    assert not result.reencoded, "a plain image is kept"
    assert (result.width, result.height) == size, "kept at its own size"
    kept = decoded(result.data)
    assert kept.tobytes() == decoded(data).tobytes(), "the same picture"
    assert not kept.getexif(), "no EXIF (no GPS) left"
    if result.format == "JPEG":
        assert metadata_segments(result.data) == []
        assert result.data.endswith(b"\xff\xd9")


def test_a_kept_original_is_refused_like_an_upload() -> None:
    with pytest.raises(RejectedImage) as refused:
        kept_or_compressed(corpus_file("broken/truncated.jpg"))
    with pytest.raises(RejectedImage) as by_compress:
        compress(corpus_file("broken/truncated.jpg"))
    assert refused.value.code == by_compress.value.code
