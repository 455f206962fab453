"""compress() on every file of the shared corpus, with the properties its README asks."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from shelflife.errors import RejectedImage
from shelflife.imaging import CompressionPolicy, compress, jpeg_damage, sniff_format
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


def test_transparency_is_flattened_onto_white() -> None:
    result = decoded(compress(corpus_file("alpha/full-transparent.png")).data)

    assert ImageStat.Stat(result).mean == pytest.approx([255, 255, 255], abs=1)


def test_animations_give_the_first_frame_or_are_kept() -> None:
    data = corpus_file("animated/animated-loop-3.gif")
    first = decoded(data).convert("RGB")

    still = compress(data)
    kept = compress(data, CompressionPolicy(keep_animation=True))

    assert ImageStat.Stat(ImageChops.difference(decoded(still.data), first)).mean[0] < 8
    assert (kept.data, kept.format, kept.reencoded) == (data, "GIF", False)


def test_large_photos_are_downscaled_to_the_longest_side() -> None:
    result = compress(corpus_file("photos/2569067123_aca715a2ee_o.jpg"))

    assert (result.width, result.height) == (2000, 1633)
    assert len(result.data) < len(corpus_file("photos/2569067123_aca715a2ee_o.jpg"))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("broken/corrupt-header.jpg", "corrupt"),
        ("broken/truncated.jpg", "truncated"),
        ("broken/corrupted.jpg", "image data is corrupt"),
        ("formats/check.svg", "SVG"),
    ],
)
def test_broken_and_unwanted_files_are_rejected_with_a_reason(name: str, reason: str) -> None:
    with pytest.raises(RejectedImage, match=reason) as rejected:
        compress(corpus_file(name))
    assert rejected.value.code in ("corrupt", "unknown_format")


def test_lost_jpeg_data_is_found_by_its_restart_markers() -> None:
    buffer = io.BytesIO()
    decoded(corpus_file("photos/flowers.jpeg")).save(buffer, "JPEG", restart_marker_rows=1)
    sound = buffer.getvalue()
    cut_from, cut_to = sound.find(b"\xff\xd3"), sound.find(b"\xff\xd5")

    assert jpeg_damage(sound) is None
    assert "restart marker 5 where 3 was due" in str(jpeg_damage(sound[:cut_from] + sound[cut_to:]))
    # Pillow alone decodes the damaged file without a word.
    decoded(sound[:cut_from] + sound[cut_to:])


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

    assert (result.data, result.reencoded) == (small, False)
    assert (result.width, result.height) == (640, 360)
