"""Hostile input for ingest: files generated (from the corpus's real photos, or from
nothing) to be wrong in every way an upload can be, and a run of all of them through
the ingest service (``python -m shelflife_tools.prove.hostile``).

Every file must end processed (stored) or rejected with a reason, its original kept in
quarantine; nothing may raise out of ingest (a raise would fail the batch and retry a
file that will never work); and each file's time and the run's peak memory are
reported against their bounds.
"""

from __future__ import annotations

import io
import json
import logging
import random
import resource
import struct
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from shelflife.adapters.backends import MemoryBackend, ProviderBackends
from shelflife.adapters.table.memory import MemoryRepository
from shelflife.domain.records import ImageState
from shelflife.domain.settings import Settings
from shelflife.domain.storage import BucketPolicy
from shelflife.domain.strip import strip
from shelflife.domain.uploads import QUARANTINE_PREFIX, Upload
from shelflife.services.ingest import IngestService, Outcome

UPLOADS = "hostile-uploads"
TEMP = "hostile-temp"
# The bounds the run is held to: ingest's memory size in the template (1536 MB) and a
# tenth of its timeout per file.
MAX_RSS_MB = 1536
MAX_SECONDS_PER_FILE = 6.0
SOURCES = ("photos", "camera")


@dataclass(frozen=True)
class HostileFile:
    kind: str
    name: str
    data: bytes


# ---- the files ------------------------------------------------------------------------


def _png(
    width: int, height: int, *, mode_byte: int = 2, depth: int = 8, rows: bytes | None = None
) -> bytes:
    """A PNG written by hand, so its header can claim what a library would refuse to
    write (the pixels compress to almost nothing: a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, depth, mode_byte, 0, 0, 0)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[mode_byte]
    if rows is None:
        row = b"\x00" + b"\x00" * (width * channels * depth // 8)
        compressor = zlib.compressobj(9)
        body = b"".join(compressor.compress(row) for _ in range(min(height, 4096)))
        rows = body + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def _encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _exif_jpeg(size: int, blocks: int = 1) -> bytes:
    """A JPEG with ``blocks`` APP1 segments of ``size`` bytes of EXIF-like junk."""
    base = _encoded(Image.new("RGB", (64, 64), "red"), "JPEG")
    segment = b"\xff\xe1" + struct.pack(">H", size + 2) + b"Exif\x00\x00" + b"\x41" * (size - 6)
    return base[:2] + segment * blocks + base[2:]


def hostile_files(corpus: Path, *, seed: int = 9) -> list[HostileFile]:
    rng = random.Random(seed)
    photos = sorted(
        p
        for folder in SOURCES
        for p in (corpus / folder).iterdir()
        if p.suffix.lower() in (".jpg", ".jpeg")
    )
    if not photos:
        raise FileNotFoundError(f"no photos in {corpus}/{{{','.join(SOURCES)}}}")
    files: list[HostileFile] = []
    for photo in photos:
        data = photo.read_bytes()
        for tenth in range(1, 10):
            files.append(
                HostileFile(
                    "truncated", f"{photo.stem}-cut{tenth}0.jpg", data[: len(data) * tenth // 10]
                )
            )
        for attempt in range(10):
            flipped = bytearray(data)
            for _ in range(rng.choice((1, 8, 64))):
                at = rng.randrange(2, len(flipped))
                flipped[at] ^= 1 << rng.randrange(8)
            files.append(
                HostileFile("flipped bytes", f"{photo.stem}-flip{attempt}.jpg", bytes(flipped))
            )
    files += [
        HostileFile("empty", "empty.jpg", b""),
        HostileFile("zeros", "zeros-1k.jpg", b"\x00" * 1024),
        HostileFile("zeros", "zeros-1m.jpg", b"\x00" * 1024**2),
        HostileFile("jpeg header only", "soi-only.jpg", b"\xff\xd8\xff"),
    ]
    for size in (1, 17, 512, 4096, 65536, 10**6):
        files.append(HostileFile("random bytes", f"random-{size}.jpg", rng.randbytes(size)))
        files.append(
            HostileFile(
                "random bytes",
                f"jpeg-magic-random-{size}.jpg",
                b"\xff\xd8\xff\xe0" + rng.randbytes(size),
            )
        )
    files += [
        HostileFile("text", "notes.jpg", b"just some text, not an image\n" * 20),
        HostileFile("text", "data.jpg", json.dumps({"image": "no"}).encode()),
        HostileFile(
            "svg as jpeg",
            "vector.jpg",
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b"<script>alert(1)</script></svg>",
        ),
        HostileFile(
            "svg as jpeg",
            "xxe.jpg",
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><svg>&e;</svg>',
        ),
        HostileFile(
            "html as jpeg",
            "page.jpg",
            b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
        ),
        HostileFile(
            "html as jpeg",
            "page-with-magic.jpg",
            b"\xff\xd8\xff<html><script>alert(1)</script></html>",
        ),
    ]
    files += [
        HostileFile("decompression bomb", "bomb-png-50k.png", _png(50_000, 50_000)),
        HostileFile(
            "decompression bomb", "bomb-png-rgba-30k.png", _png(30_000, 30_000, mode_byte=6)
        ),
        HostileFile(
            "decompression bomb", "bomb-png-gray-100k.png", _png(100_000, 100_000, mode_byte=0)
        ),
        HostileFile("decompression bomb", "bomb-gif.gif", _gif_bomb()),
        HostileFile("decompression bomb", "bomb-webp.webp", _webp_bomb()),
        HostileFile(
            "extreme dimensions", "tall-1x60000.png", _encoded(Image.new("L", (1, 60_000)), "PNG")
        ),
        HostileFile(
            "extreme dimensions", "wide-60000x1.png", _encoded(Image.new("L", (60_000, 1)), "PNG")
        ),
        HostileFile(
            "extreme dimensions", "one-pixel.jpg", _encoded(Image.new("RGB", (1, 1)), "JPEG")
        ),
        HostileFile("extreme dimensions", "png-zero-width.png", _png(0, 10)),
        HostileFile("huge exif", "exif-60k.jpg", _exif_jpeg(60_000)),
        HostileFile("huge exif", "exif-60k-x20.jpg", _exif_jpeg(60_000, blocks=20)),
        HostileFile("broken exif", "exif-bad-tiff-header.jpg", _broken_exif_jpeg()),
        HostileFile(
            "huge exif",
            "exif-broken-length.jpg",
            b"\xff\xd8\xff\xe1\xff\xff" + b"Exif\x00\x00" + b"\x00" * 100,
        ),
        HostileFile("animated", "frames-3000.gif", _animated("GIF", 3000)),
        HostileFile("animated", "frames-2000.webp", _animated("WEBP", 2000)),
        HostileFile(
            "cmyk without profile",
            "cmyk.jpg",
            _encoded(Image.new("CMYK", (300, 200), (10, 200, 30, 0)), "JPEG"),
        ),
        HostileFile(
            "cmyk without profile",
            "cmyk.tiff",
            _encoded(Image.new("CMYK", (300, 200), (200, 10, 30, 5)), "TIFF"),
        ),
        HostileFile("16-bit", "gray16.png", _encoded(Image.new("I;16", (300, 200), 40_000), "PNG")),
        HostileFile(
            "16-bit", "gray16.tiff", _encoded(Image.new("I;16", (300, 200), 1_000), "TIFF")
        ),
        HostileFile("palette with transparency", "palette-alpha.png", _palette_png()),
        HostileFile("palette with transparency", "palette-alpha.gif", _palette_gif()),
        HostileFile(
            "palette with transparency",
            "la.png",
            _encoded(Image.new("LA", (120, 80), (128, 0)), "PNG"),
        ),
        HostileFile("other format", "bitmap.jpg", _encoded(Image.new("RGB", (40, 40)), "BMP")),
        HostileFile("other format", "icon.jpg", _encoded(Image.new("RGBA", (32, 32)), "ICO")),
        HostileFile("other format", "jpeg2000.jp2", _jpeg2000()),
        HostileFile("other format", "cielab16.tif", cielab_tiff(16, 16)),
    ]
    files += smuggled_metadata_files(photos[0].read_bytes())
    return files


# What every smuggled payload carries: found in a stored object, it leaked.
SECRET = b"SHELFLIFE-SECRET-GPS-52.5200N-13.4050E"
# Kinds whose files must be refused as unsupported (not as unknown or corrupt).
UNSUPPORTED = {"other format": {"unsupported_format", "unsupported_mode"}}


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def gps_jpeg() -> bytes:
    """A whole small JPEG whose EXIF holds a GPS position (the SECRET in its comment)."""
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 18.0)}
    image = Image.new("RGB", (8, 8), "green")
    return _encoded(image, "JPEG", exif=exif.tobytes(), comment=SECRET)


def smuggling_payloads() -> list[tuple[str, bytes, bytes]]:
    """(name, segments to insert after SOI, bytes to append after EOI): every place
    where metadata hides that Pillow does not parse into ``info``."""
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", len(SECRET)) + SECRET
    extended_xmp = b"http://ns.adobe.com/xmp/extension/\x00" + b"0" * 32 + SECRET
    return [
        ("app13-iptc", _segment(0xED, iptc), b""),
        ("extended-xmp", _segment(0xE1, extended_xmp), b""),
        ("exif-in-app3", _segment(0xE3, b"Exif\x00\x00" + SECRET), b""),
        ("app15-text", _segment(0xEF, SECRET), b""),
        ("trailing-html", b"", b"<html><script>alert(1)</script>" + SECRET + b"</html>"),
        ("trailing-zip", b"", b"PK\x03\x04" + SECRET + b"\x00" * 20 + b"PK\x05\x06"),
        ("trailing-gps-jpeg", b"", gps_jpeg()),
    ]


def optimal_jpeg(photo: bytes) -> bytes:
    """A small JPEG that re-encoding would not shrink: ingest keeps it (rebuilt)."""
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    image.thumbnail((640, 640))
    return _encoded(image, "JPEG", quality=40, progressive=True, optimize=True)


def smuggled_metadata_files(photo: bytes) -> list[HostileFile]:
    """Each payload in a JPEG that is kept (an optimal one) and in one that is
    re-encoded (a camera photo): neither stored object may carry it."""
    files = []
    for base_name, base in (("optimal", optimal_jpeg(photo)), ("photo", photo)):
        for name, segments, trailer in smuggling_payloads():
            data = base[:2] + segments + base[2:] + trailer
            files.append(HostileFile("smuggled metadata", f"{base_name}-{name}.jpg", data))
    return files


def _jpeg2000() -> bytes:
    """The signature box and file-type box of a JP2 file, and a codestream's start."""
    return (
        b"\x00\x00\x00\x0cjP  \r\n\x87\n"
        + b"\x00\x00\x00\x14ftypjp2 \x00\x00\x00\x00jp2 "
        + b"\xff\x4f\xff\x51"
        + b"\x00" * 64
    )


def cielab_tiff(width: int, height: int, *, bits: int = 16, pixel: bytes | None = None) -> bytes:
    """An uncompressed CIELab TIFF (photometric 8), written by hand: Pillow reads 8-bit
    Lab but not 16-bit. ``pixel``: L, a*, b* (a* and b* signed), ``bits`` // 8 bytes each."""
    data = (pixel or bytes(3 * bits // 8)) * (width * height)
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 3, 8 + 2 + 9 * 12 + 4),  # offset of the three 16s after the directory
        (259, 3, 1, 1),
        (262, 3, 1, 8),
        (273, 4, 1, 8 + 2 + 9 * 12 + 4 + 6),
        (277, 3, 1, 3),
        (278, 4, 1, height),
        (279, 4, 1, len(data)),
    ]
    directory = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        inline = kind == 4 or count > 2  # a LONG, or an offset to the values
        packed = struct.pack("<I", value) if inline else struct.pack("<HH", value, 0)
        directory += struct.pack("<HHI", tag, kind, count) + packed
    depths = struct.pack("<HHH", bits, bits, bits)
    return b"II*\x00" + struct.pack("<I", 8) + directory + b"\x00" * 4 + depths + data


def _broken_exif_jpeg() -> bytes:
    """A JPEG whose EXIF block has a TIFF header Pillow refuses ("I*I\\0"; atheris found
    it raising out of compress)."""
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    # Wider than the default 2000 px: the resized copy reads its EXIF afresh.
    data = _encoded(Image.new("RGB", (2400, 40), "blue"), "JPEG", exif=exif.tobytes())
    at = data.index(b"Exif\x00\x00") + 6
    return data[:at] + b"I*I\x00" + data[at + 4 :]


def _gif_bomb() -> bytes:
    """A GIF whose screen and frame claim 65535 x 65535 pixels."""
    image = _encoded(Image.new("P", (8, 8)), "GIF")
    return image[:6] + struct.pack("<HH", 65_535, 65_535) + image[10:]


def _webp_bomb() -> bytes:
    """A lossless WebP whose header claims 16384 x 16384 pixels (WebP's largest), with
    the pixel data of a 1 x 1 image."""
    data = bytearray(_encoded(Image.new("RGB", (1, 1)), "WEBP", lossless=True))
    at = data.index(b"VP8L") + 8
    assert data[at] == 0x2F
    (bits,) = struct.unpack("<I", data[at + 1 : at + 5])
    bits = (bits & ~0x0FFFFFFF) | 0x3FFF | (0x3FFF << 14)
    data[at + 1 : at + 5] = struct.pack("<I", bits)
    return bytes(data)


def _animated(fmt: str, frames: int) -> bytes:
    images = [Image.new("RGB", (16, 16), (i % 256, (i * 7) % 256, 0)) for i in range(frames)]
    options: dict[str, Any] = {
        "save_all": True,
        "append_images": images[1:],
        "duration": 10,
        "loop": 0,
    }
    if fmt == "WEBP":
        options.update(quality=10, method=0)
    return _encoded(images[0], fmt, **options)


def _palette_png() -> bytes:
    image = Image.new("P", (64, 64))
    image.putpalette([i % 256 for i in range(768)])
    image.info["transparency"] = 0
    return _encoded(image, "PNG", transparency=0)


def _palette_gif() -> bytes:
    image = Image.new("P", (64, 64), 3)
    return _encoded(image, "GIF", transparency=3)


# ---- the run --------------------------------------------------------------------------


@dataclass
class HostileReport:
    files: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")
    seconds: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "outcomes": dict(self.outcomes),
            "by_kind": {kind: dict(counts) for kind, counts in sorted(self.by_kind.items())},
            "rejection_codes": dict(self.reasons.most_common()),
            "problems": self.problems,
            "slowest_seconds": round(self.slowest[0], 3),
            "slowest_file": self.slowest[1],
            "total_seconds": round(self.seconds, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "bounds": {"rss_mb": MAX_RSS_MB, "seconds_per_file": MAX_SECONDS_PER_FILE},
        }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(files: list[HostileFile], settings: Settings | None = None) -> HostileReport:
    """Every file through ``IngestService.ingest`` (memory backends and table): what
    happened, and everything that broke a rule."""
    settings = settings or Settings.from_env(
        {},
        table_name="hostile",
        upload_bucket=UPLOADS,
        temp={"backend": "memory", "bucket": TEMP},
        hot={"backend": "memory", "bucket": "hostile-hot"},
        cold={"backend": "memory", "bucket": "hostile-cold"},
    )
    uploads, storage, repository = MemoryBackend(), MemoryBackend(), MemoryRepository()
    uploads.create_bucket(UPLOADS, BucketPolicy(tier="upload"))
    storage.create_bucket(TEMP, BucketPolicy(tier="temp"))
    service = IngestService(
        settings, repository, ProviderBackends(settings, given={"memory": storage}), uploads=uploads
    )
    report = HostileReport()
    began = time.monotonic()
    for index, item in enumerate(files):
        key = f"incoming/mallory/{index:04d}-{item.name}"
        uploads.put(UPLOADS, key, item.data, content_type="image/jpeg")
        started = time.monotonic()
        try:
            result = service.ingest(Upload(bucket=UPLOADS, key=key, size=len(item.data)))
        except Exception as e:  # the rule this run exists for: nothing escapes
            report.problems.append(f"{item.kind} {item.name}: raised {type(e).__name__}: {e}")
            continue
        took = time.monotonic() - started
        report.files += 1
        report.outcomes[result.outcome.value] += 1
        report.by_kind.setdefault(item.kind, Counter())[result.outcome.value] += 1
        if took > report.slowest[0]:
            report.slowest = (took, f"{item.kind}: {item.name}")
        if took > MAX_SECONDS_PER_FILE:
            report.problems.append(f"{item.name}: {took:.1f} s, over {MAX_SECONDS_PER_FILE} s")
        report.problems += _check(result, item, uploads, storage, repository)
        if result.rejection_code:
            report.reasons[result.rejection_code] += 1
    report.seconds = time.monotonic() - began
    report.peak_rss_mb = _peak_rss_mb()
    if report.peak_rss_mb > MAX_RSS_MB:
        report.problems.append(f"peak memory {report.peak_rss_mb:.0f} MB, over {MAX_RSS_MB} MB")
    return report


def _check(
    result: Any,
    item: HostileFile,
    uploads: MemoryBackend,
    storage: MemoryBackend,
    repository: MemoryRepository,
) -> list[str]:
    problems = []
    image = result.image
    if result.outcome is Outcome.REJECTED:
        if image is None or image.state is not ImageState.REJECTED or not image.rejection_reason:
            problems.append(f"{item.name}: rejected without a recorded reason")
        elif not image.quarantine_key or not image.quarantine_key.startswith(QUARANTINE_PREFIX):
            problems.append(f"{item.name}: rejected, original not in quarantine")
        elif uploads.get(UPLOADS, image.quarantine_key).data != item.data:
            problems.append(f"{item.name}: the quarantined copy is not the original")
        expected = UNSUPPORTED.get(item.kind)
        if expected is not None and result.rejection_code not in expected:
            problems.append(f"{item.name}: refused as {result.rejection_code}, not unsupported")
    elif result.outcome in (Outcome.STORED, Outcome.DUPLICATE):
        if (
            image is None
            or image.location is None
            or not storage.exists(image.location.bucket, image.location.key)
        ):
            problems.append(f"{item.name}: {result.outcome.value} but no stored object")
        else:
            problems += _leaks(item, storage.get(image.location.bucket, image.location.key).data)
    else:
        problems.append(f"{item.name}: outcome {result.outcome.value}")
    return problems


def _leaks(item: HostileFile, stored: bytes) -> list[str]:
    """Invariant 1 on one stored object: nothing but what decoding needs."""
    problems = []
    if SECRET in stored:
        problems.append(f"{item.name}: the stored object carries the smuggled payload")
    fmt = next((f for f, magic in _MAGIC.items() if stored.startswith(magic)), None)
    if fmt is None or strip(stored, fmt) != stored:
        problems.append(f"{item.name}: the stored object holds more than its image ({fmt})")
    return problems


_MAGIC = {"JPEG": b"\xff\xd8", "GIF": b"GIF8", "WEBP": b"RIFF"}


def iter_lines(report: HostileReport) -> Iterator[str]:
    data = report.as_dict()
    yield (
        f"hostile input: {data['files']} files in {data['total_seconds']} s, peak RSS "
        f"{data['peak_rss_mb']} MB (bound {MAX_RSS_MB})"
    )
    yield (
        f"slowest: {data['slowest_seconds']} s ({data['slowest_file']}), "
        f"bound {MAX_SECONDS_PER_FILE} s"
    )
    yield "outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(data["outcomes"].items()))
    for kind, counts in data["by_kind"].items():
        yield f"  {kind:28} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    yield "rejection codes: " + ", ".join(f"{k} {v}" for k, v in data["rejection_codes"].items())
    yield f"problems: {len(report.problems)}"
    yield from (f"  {problem}" for problem in report.problems)


def main(argv: list[str] | None = None) -> int:
    corpus = Path((argv or sys.argv[1:] or ["../shared/corpus"])[0])
    # Every file here is meant to be rejected or survived: ingest's per-file warnings
    # would bury the summary.
    logging.getLogger("shelflife").setLevel(logging.ERROR)
    report = run(hostile_files(corpus))
    for line in iter_lines(report):
        print(line)
    print(json.dumps({"measured_at": datetime.now(UTC).isoformat(), **report.as_dict()}))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
