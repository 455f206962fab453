"""Sized variants (issue 23, part 2, the renderer): each format decodes at the size
asked, with no metadata, from the stored photos of the corpus; requests outside the
fixed set of widths, fits and formats are refused with what may be asked."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from shelflife.domain.errors import InvalidArgument
from shelflife.domain.imaging import compress
from shelflife.domain.variants import negotiate, render, variant_spec
from tests.support.corpus import corpus_file

STORED = compress(corpus_file("photos/2569067123_aca715a2ee_o.jpg"))  # 2000 px wide
SMALL = compress(corpus_file("photos/320x240.jpg"))


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
@pytest.mark.parametrize(
    ("width", "height", "fit"),
    [(320, None, "contain"), (160, None, "cover"), (640, 160, "contain"), (640, 320, "cover")],
)
def test_a_variant_is_the_size_asked_in_its_format_and_carries_nothing_else(
    fmt: str, width: int, height: int | None, fit: str
) -> None:
    spec = variant_spec(width, height, fit, fmt)
    data = render(STORED.data, spec)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}[fmt]
        assert Image.MIME[image.format] == spec.mime_type
        if fit == "cover":
            assert image.size == (width, spec.height)
        else:
            assert image.width <= width
            assert height is None or image.height <= height
            assert max(image.width / width, image.height / (height or 10**6)) > 0.99
        assert not image.getexif()
        assert "icc_profile" not in image.info
    assert len(data) < len(STORED.data) / 4


def test_a_variant_is_never_larger_than_its_photo() -> None:
    with Image.open(io.BytesIO(render(SMALL.data, variant_spec(1280)))) as image:
        assert image.size == (SMALL.width, SMALL.height)
    with Image.open(io.BytesIO(render(SMALL.data, variant_spec(640, 640, "cover")))) as image:
        assert image.size == (SMALL.height, SMALL.height)


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("image/avif,image/webp,image/apng,*/*;q=0.8", "avif"),
        ("image/webp,*/*", "webp"),
        ("*/*", "jpeg"),
        (None, "jpeg"),
    ],
)
def test_auto_takes_the_smallest_format_the_client_accepts(accept: str | None, chosen: str) -> None:
    assert negotiate("auto", accept) == chosen
    assert negotiate("jpeg", accept) == "jpeg"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ({"width": 300}, "w must be one of 160, 320, 640, 1280, 2000"),
        ({"width": 320, "fit": "stretch"}, "fit must be contain or cover"),
        ({"width": 320, "format": "gif"}, "format must be auto, jpeg, webp or avif"),
        ({"width": 320, "height": 200}, "h must be one of 160, 320"),
    ],
)
def test_a_variant_outside_the_set_is_refused(args: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        variant_spec(**args)  # type: ignore[arg-type]


def test_the_same_request_names_the_same_variant() -> None:
    assert variant_spec(320, format="webp").name == "320xauto-contain.webp"
    assert variant_spec(160, fit="cover", format="jpeg").name == "160x160-cover.jpg"


@pytest.mark.parametrize("kind", ["WEBP", "GIF", "PNG"])
def test_a_kept_original_with_transparency_is_flattened_onto_white(kind: str) -> None:
    # What an import with --keep-originals may store: a picture with clear pixels.
    picture = Image.new("RGBA", (800, 600), (0, 0, 0, 0))
    picture.paste((200, 30, 30, 255), (200, 150, 600, 450))
    source = io.BytesIO()
    picture.save(source, kind)
    variant = render(source.getvalue(), variant_spec(320, format="jpeg"))
    with Image.open(io.BytesIO(variant)) as image:
        rgb = image.convert("RGB")
        assert rgb.getpixel((5, 5)) == pytest.approx((255, 255, 255), abs=3)  # was clear
        red = rgb.getpixel((160, 120))
        assert isinstance(red, tuple)
        assert red[0] > 150 > red[1]  # the opaque square kept its colour


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_a_variant_of_a_file_with_metadata_carries_none_of_it(fmt: str) -> None:
    # The renderer on its own, given an original with EXIF and an ICC profile (a stored
    # photo has neither: this holds even if one ever did).
    original = corpus_file("colour/Channel_digital_image_CMYK_color.jpg")
    with Image.open(io.BytesIO(original)) as source:
        assert source.info.get("icc_profile")
        assert source.info.get("exif")
    with Image.open(io.BytesIO(render(original, variant_spec(160, format=fmt)))) as image:
        assert not image.info.get("icc_profile")
        assert not image.info.get("exif")
        assert not image.info.get("xmp")
        assert len(image.getexif()) == 0
