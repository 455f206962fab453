"""Invariant 1: a stored image holds only what is needed to decode it, also when ingest
keeps the original instead of re-encoding it (issue 19, part 1)."""

from __future__ import annotations

import io
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from shelflife.domain.imaging import CompressionPolicy, compress
from shelflife.domain.strip import strip, strip_gif, strip_jpeg, strip_webp
from shelflife_tools.prove.hostile import (
    SECRET,
    optimal_jpeg,
    smuggled_metadata_files,
)
from tests.support.corpus import corpus_file, corpus_names

JPEGS = [n for n in corpus_names("photos", "camera", "orientation", "colour") if "." in n]
JPEGS = [n for n in JPEGS if n.lower().endswith((".jpg", ".jpeg"))]
# A JPEG ingest keeps (its re-encode would be larger): the attack's target.
OPTIMAL = optimal_jpeg(corpus_file("photos/flowers.jpeg"))


def pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.mode, image.size, image.tobytes()


def segments(data: bytes) -> list[int]:
    """Every marker of a JPEG up to its first scan."""
    found, offset = [], 2
    while offset + 4 <= len(data) and data[offset] == 0xFF and data[offset + 1] != 0xDA:
        found.append(data[offset + 1])
        offset += 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")
    return found


def first_scan(data: bytes) -> int:
    """Where the first start-of-scan segment begins (an EXIF thumbnail has its own)."""
    offset = 2
    while data[offset + 1] != 0xDA:
        offset += 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")
    return offset


def is_bare(data: bytes) -> bool:
    """No APPn or COM segment, and nothing after the end-of-image marker."""
    return (
        not any(0xE0 <= m <= 0xEF or m == 0xFE for m in segments(data))
        and data.endswith(b"\xff\xd9")
        and strip_jpeg(data) == data
    )


def test_an_optimal_jpeg_is_kept_and_its_payloads_are_dropped() -> None:
    # Today's main stored these bytes as uploaded: the payload was served to anyone.
    for item in smuggled_metadata_files(corpus_file("photos/flowers.jpeg")):
        result = compress(item.data)

        assert SECRET not in result.data, item.name
        assert is_bare(result.data), item.name
        if item.name.startswith("optimal"):
            assert not result.reencoded, item.name  # the kept path is what is tested
            assert pixels(result.data) == pixels(item.data), item.name


@st.composite
def smuggled(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from([*JPEGS, "optimal"]))
    base = OPTIMAL if name == "optimal" else corpus_file(name)
    inserted = b""
    for _ in range(draw(st.integers(0, 4))):
        marker = draw(st.sampled_from([0xE2, 0xE3, 0xE9, 0xEB, 0xED, 0xEF, 0xFE]))
        payload = draw(st.binary(max_size=64)) + SECRET
        inserted += bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload
    trailer = draw(st.one_of(st.just(b""), st.binary(min_size=1, max_size=256).map(SECRET.__add__)))
    # Segments go after SOI or just before the first scan: both are read as metadata.
    if draw(st.booleans()):
        data = base[:2] + inserted + base[2:]
    else:
        scan = first_scan(base)
        data = base[:scan] + inserted + base[scan:]
    return name, data + trailer


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(smuggled())
def test_no_inserted_segment_or_trailing_byte_survives(case: tuple[str, bytes]) -> None:
    name, data = case

    result = compress(data)

    assert SECRET not in result.data, name
    assert is_bare(result.data), name
    if not result.reencoded:
        assert pixels(result.data) == pixels(data), name


def test_a_kept_jpeg_must_decode_to_the_same_pixels() -> None:
    # An Adobe APP14 on a 3-channel JPEG says "RGB, no colour transform": dropped, the
    # decoder would read YCbCr and change every pixel. The proof catches it: re-encoded.
    image = Image.new("RGB", (64, 64), (200, 30, 90))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=30)
    plain = out.getvalue()
    adobe = struct.pack(">5sHHHB", b"Adobe", 100, 0, 0, 0)
    data = plain[:2] + bytes([0xFF, 0xEE]) + struct.pack(">H", len(adobe) + 2) + adobe + plain[2:]

    result = compress(data)

    assert is_bare(result.data)
    assert result.reencoded or pixels(result.data) == pixels(data)


def test_a_jpeg_without_its_end_is_not_rebuilt() -> None:
    assert strip_jpeg(OPTIMAL[:-2]) is None
    assert strip_jpeg(OPTIMAL[: len(OPTIMAL) // 2]) is None
    assert strip_jpeg(b"\xff\xd8\xff\xd9") is None  # no scan
    assert strip_jpeg(OPTIMAL) is not None


def test_kept_animations_lose_their_comments_and_application_data() -> None:
    rgb = [Image.new("RGB", (16, 16), colour) for colour in ("red", "green", "blue")]
    out = io.BytesIO()
    rgb[0].save(
        out, "GIF", save_all=True, append_images=rgb[1:], loop=0, duration=50, comment=SECRET
    )
    gif = out.getvalue() + b"trailing" + SECRET
    out = io.BytesIO()
    rgb[0].save(out, "WEBP", save_all=True, append_images=rgb[1:], exif=b"Exif\x00\x00" + SECRET)
    webp = out.getvalue()

    for data, fmt in ((gif, "GIF"), (webp, "WEBP")):
        kept = compress(data, CompressionPolicy(keep_animation=True))

        assert (kept.format, kept.reencoded) == (fmt, False)
        assert SECRET not in kept.data
        assert strip(kept.data, fmt) == kept.data
        with Image.open(io.BytesIO(kept.data)) as image:
            assert getattr(image, "n_frames", 1) == 3
            assert "comment" not in image.info
            assert "exif" not in image.info
    assert strip_gif(gif[: gif.index(b";")]) is None  # no trailer: not rebuilt
    assert strip_webp(webp[:20]) is None
