"""Image files rebuilt from only what a decoder needs (invariant 1 of DEVELOPERS.md).

When an upload is kept instead of re-encoded (re-encoding would make it larger, or the
policy keeps animations), its bytes are not stored as they came: metadata can hide in
places Pillow does not parse (Photoshop/IPTC blocks in APP13, Extended-XMP, EXIF moved
to another APPn, free text in APP15, GIF comments, WebP EXIF/XMP chunks) and anything
can follow the end-of-image marker (HTML, a ZIP, a second JPEG with a GPS fix). Each
function here walks the container and copies only the structures that decoding reads,
in order, then stops at the end marker. ``None`` means the file cannot be rebuilt with
certainty (no end marker, a structure out of place): the caller re-encodes instead.
"""

from __future__ import annotations

import re

# JPEG markers whose segments decoding reads: quantisation (DQT), Huffman (DHT) and
# arithmetic (DAC) tables, restart interval (DRI), number of lines (DNL), hierarchical
# progression (DHP, EXP) and every start-of-frame (SOF0-15 but DHT, JPG and DAC).
_JPEG_TABLES = {0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF}
_JPEG_FRAMES = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_KEEP = _JPEG_TABLES | _JPEG_FRAMES
# Inside entropy-coded data 0xFF is followed by 0x00 (stuffing) or a restart marker;
# anything else ends the scan.
_FF_NOT_STUFFED = re.compile(rb"\xff(?!\x00)")


def strip_jpeg(data: bytes) -> bytes | None:
    """The JPEG as SOI, its tables, frame and scans, and EOI: every APPn (JFIF, EXIF,
    XMP, ICC, Photoshop/IPTC, Adobe), COM and byte after EOI dropped. None if the
    structure is not a complete JPEG (then nothing is kept of it)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    out = [b"\xff\xd8"]
    offset = 2
    seen_scan = False
    while offset + 2 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte before a marker
            offset += 1
            continue
        if marker == 0xD9:
            return b"".join(out) + b"\xff\xd9" if seen_scan else None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # stray standalone marker
            offset += 2
            continue
        if offset + 4 > len(data):
            return None
        end = offset + 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")
        if end > len(data):
            return None
        if marker == 0xDA:
            scan_end = _scan_end(data, end)
            if scan_end is None:
                return None
            out.append(data[offset:scan_end])
            seen_scan = True
            offset = scan_end
            continue
        if marker in _JPEG_KEEP:
            out.append(data[offset:end])
        offset = end
    return None


def _scan_end(data: bytes, start: int) -> int | None:
    """Where the entropy-coded data that starts at ``start`` ends (the next marker
    that is not a restart marker), or None if the data ends first."""
    position = start
    while match := _FF_NOT_STUFFED.search(data, position):
        at = match.start()
        if at + 1 >= len(data):
            return None
        following = data[at + 1]
        if 0xD0 <= following <= 0xD7:
            position = at + 2
            continue
        return at
    return None


# GIF blocks: image descriptor, extension introducer, trailer.
_GIF_IMAGE, _GIF_EXTENSION, _GIF_TRAILER = 0x2C, 0x21, 0x3B
_GIF_GRAPHIC_CONTROL, _GIF_APPLICATION = 0xF9, 0xFF
# The one application extension a viewer acts on: how many times the animation loops.
_GIF_LOOPING = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


def strip_gif(data: bytes) -> bytes | None:
    """The GIF as header, screen descriptor, colour tables, graphic control blocks
    (frame timing, transparency), frames, the looping extension and the trailer:
    comments, plain-text blocks, XMP and other application data dropped."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    flags = data[10]
    offset = 13 + (3 * 2 ** ((flags & 0x07) + 1) if flags & 0x80 else 0)
    out = [data[:offset]]
    while offset < len(data):
        block = data[offset]
        if block == _GIF_TRAILER:
            out.append(b"\x3b")
            return b"".join(out)
        if block == _GIF_IMAGE:
            if offset + 10 > len(data):
                return None
            local = data[offset + 9]
            header_end = offset + 10 + (3 * 2 ** ((local & 0x07) + 1) if local & 0x80 else 0)
            # LZW minimum code size, then the data sub-blocks.
            end = _gif_sub_blocks(data, header_end + 1)
            if end is None:
                return None
            out.append(data[offset:end])
            offset = end
            continue
        if block == _GIF_EXTENSION:
            if offset + 2 > len(data):
                return None
            label = data[offset + 1]
            end = _gif_sub_blocks(data, offset + 2)
            if end is None:
                return None
            application = data[offset + 3 : offset + 14]
            if label == _GIF_GRAPHIC_CONTROL or (
                label == _GIF_APPLICATION and application in _GIF_LOOPING
            ):
                out.append(data[offset:end])
            offset = end
            continue
        return None
    return None


def _gif_sub_blocks(data: bytes, offset: int) -> int | None:
    """The end of a chain of data sub-blocks (length byte, bytes; 0 ends it)."""
    while offset < len(data):
        size = data[offset]
        offset += 1 + size
        if size == 0:
            return offset if offset <= len(data) else None
    return None


# WebP chunks that decoding reads: the bitstreams (lossy, lossless, alpha), the
# extended header and the animation's global and per-frame chunks.
_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"}
# VP8X flags: ICC profile, EXIF and XMP present (cleared: those chunks are dropped).
_VP8X_METADATA_FLAGS = 0x20 | 0x08 | 0x04


def strip_webp(data: bytes) -> bytes | None:
    """The WebP with only its image chunks: ICCP, EXIF, XMP and unknown chunks and any
    byte after the RIFF container dropped, the extended header's flags to match."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    end = 8 + int.from_bytes(data[4:8], "little")
    if end > len(data):
        return None
    chunks = []
    offset = 12
    while offset + 8 <= end:
        kind = data[offset : offset + 4]
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        chunk_end = offset + 8 + size + (size & 1)  # chunks are padded to even sizes
        if offset + 8 + size > end:
            return None
        if kind in _WEBP_KEEP:
            chunk = data[offset:chunk_end]
            if kind == b"VP8X":
                chunk = chunk[:8] + bytes([chunk[8] & ~_VP8X_METADATA_FLAGS]) + chunk[9:]
            chunks.append(chunk)
        offset = chunk_end
    if offset < end or not chunks:
        return None
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


STRIPPERS = {"JPEG": strip_jpeg, "GIF": strip_gif, "WEBP": strip_webp}


def strip(data: bytes, image_format: str) -> bytes | None:
    """``data`` rebuilt from what decoding needs, or None (unknown format, or a
    structure that cannot be rebuilt with certainty)."""
    stripper = STRIPPERS.get(image_format)
    return stripper(data) if stripper is not None else None
