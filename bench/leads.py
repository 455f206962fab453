"""Issue 24's leads, measured: pipelines that might make compress faster than pyvips,
each against pyvips at compress's output size, on the JPEGs of the speed set (the
corpus's camera and photo sets and the generated photos of bench/compression.py).

    .venv/bin/python -m bench.leads [--repeat N]     (after make bench has installed)

None of these is shelflife's pipeline; they are here so that the figures in the issue's
notes can be produced again, and a new lead can be tried beside them:

- ``vips-cubic+pillow``: libvips decodes (shrinking in the DCT domain by 1/2, 1/4, 1/8
  while it stays at or above the target) and resamples with its cubic kernel; Pillow
  then applies orientation, colour and greyness as compress does, and encodes;
- ``vips-cubic``: the same resample, then libvips encodes too (orientation applied,
  no colour management: only fair on files without a profile);
- ``simplejpeg-m8``: libjpeg-turbo's scaled decode to the nearest of its M/8 scales
  at or above the target (simplejpeg's ``min_width``/``min_height``), then one Lanczos
  resample, then compress's encoder.

One thread (VIPS_CONCURRENCY=1); interleaved rounds; medians; SSIM as in
bench/compression.py. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")

import numpy as np
import pyvips
import simplejpeg
from PIL import Image

from bench.compression import (
    CORPUS,
    SPEED_SETS,
    Size,
    inputs,
    pyvips_thumbnail,
    reference,
    shelflife_compress,
    ssim,
)
from shelflife.domain.imaging import CompressionPolicy, _encode, _normalise, _without_colour

POLICY = CompressionPolicy()


def _dct_shrink(width: int, height: int, size: Size) -> int:
    """The largest of 1, 2, 4, 8 that keeps the decoded image at least ``size``."""
    target = max(size)
    return max(s for s in (1, 2, 4, 8) if math.ceil(max(width, height) / s) >= target)


def _unrotated(header: Image.Image, size: Size) -> Size:
    """compress's output size before its EXIF orientation is applied (the resample
    happens first): orientations 5-8 swap the sides."""
    return (size[1], size[0]) if header.getexif().get(0x0112, 1) in (5, 6, 7, 8) else size


def _vips_cubic(data: bytes, size: Size) -> tuple[pyvips.Image, Image.Image]:
    header = Image.open(io.BytesIO(data))
    shrink = _dct_shrink(*header.size, size)
    # Random access: autorot (vips-cubic) reads the rows out of order.
    image = pyvips.Image.jpegload_buffer(data, shrink=shrink)
    width, height = _unrotated(header, size)
    if (image.width, image.height) == (width, height):
        return image, header
    resized = image.resize(width / image.width, vscale=height / image.height, kernel="cubic")
    return resized, header


def vips_cubic_pillow(data: bytes, size: Size) -> bytes:
    resized, header = _vips_cubic(data, size)
    mode = "L" if resized.bands == 1 else "RGB"
    small = Image.frombuffer(
        mode, (resized.width, resized.height), resized.write_to_memory(), "raw", mode, 0, 1
    )
    small.info.update(header.info)  # orientation and profile, applied as compress does
    return _encode(_without_colour(_normalise(small)), POLICY)


def vips_cubic(data: bytes, size: Size) -> bytes:
    resized, _ = _vips_cubic(data, size)
    output: bytes = resized.autorot().jpegsave_buffer(Q=85, strip=True, interlace=True)
    return output


def simplejpeg_m8(data: bytes, size: Size) -> bytes:
    header = Image.open(io.BytesIO(data))
    width, height = _unrotated(header, size)
    pixels = simplejpeg.decode_jpeg(data, min_width=width, min_height=height)
    image = Image.fromarray(pixels)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    image.info.update(header.info)
    return _encode(_without_colour(_normalise(image)), POLICY)


LEADS: dict[str, Callable[[bytes, Size], bytes]] = {
    "compress": shelflife_compress,
    "pyvips": pyvips_thumbnail,
    "vips-cubic+pillow": vips_cubic_pillow,
    "vips-cubic": vips_cubic,
    "simplejpeg-m8": simplejpeg_m8,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds per image (median)")
    args = parser.parse_args(argv)
    if not CORPUS.is_dir():
        sys.exit(f"{CORPUS} is missing: the corpus lives in ../shared/corpus beside the project")
    ratios: dict[str, list[float]] = {name: [] for name in LEADS}
    print(
        f"{'image':<36} {'lead':<18} {'ms':>6} {'ratio':>5} {'bytes':>7} {'SSIM':>6} {'dSSIM':>7}"
    )
    with tempfile.TemporaryDirectory() as workdir:
        for name, path in inputs(Path(workdir)):
            data = path.read_bytes()
            if not name.startswith(SPEED_SETS) or not data.startswith(b"\xff\xd8"):
                continue
            size = Image.open(io.BytesIO(shelflife_compress(data, (0, 0)))).size
            outputs = {lead: run(data, size) for lead, run in LEADS.items()}  # warm-up
            times: dict[str, list[float]] = {lead: [] for lead in LEADS}
            for _ in range(args.repeat):
                for lead, run in LEADS.items():
                    start = time.perf_counter()
                    run(data, size)
                    times[lead].append(time.perf_counter() - start)
            vips_ms = statistics.median(times["pyvips"]) * 1000
            scores = {}
            for lead, output in outputs.items():
                decoded = Image.open(io.BytesIO(output)).convert("L")
                scores[lead] = ssim(
                    np.asarray(decoded, dtype=np.float64), reference(data, decoded.size)
                )
            for lead, output in outputs.items():
                ms = statistics.median(times[lead]) * 1000
                ratios[lead].append(ms / vips_ms)
                print(
                    f"{name[:36]:<36} {lead:<18} {ms:>6.1f} {ms / vips_ms:>5.2f} "
                    f"{len(output):>7} {scores[lead]:>6.4f} "
                    f"{scores[lead] - scores['pyvips']:>+7.4f}"
                )
    print()
    for lead, values in ratios.items():
        mean = math.exp(statistics.mean(math.log(v) for v in values))
        print(f"{lead:<18} time / pyvips: geometric mean {mean:.2f}, highest {max(values):.2f}")


if __name__ == "__main__":
    main()
