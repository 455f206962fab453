"""Variant benchmark (issue 23, part 2): ``shelflife.domain.variants.render`` of a 320 px
WebP from a stored 2000 px JPEG against pyvips' ``thumbnail_buffer`` for the same
output, single-threaded, interleaved rounds in one process; the ratio of medians is
the figure (target <= 1.0). It prints, it does not assert.

    make bench            (or: .venv/bin/python -m bench.variants [--rounds N])
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")

import pyvips
from PIL import Image

from shelflife.domain.imaging import compress
from shelflife.domain.variants import render, variant_spec

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SOURCES = ["photos/2569067123_aca715a2ee_o.jpg", "camera/jolla.jpg", "camera/canon_hdr_NO.jpg"]


def vips_variant(data: bytes, width: int) -> bytes:
    # Bounded by the width alone, as the variant is (a portrait photo is 320 wide).
    image = pyvips.Image.thumbnail_buffer(data, width, height=10_000_000)
    out: bytes = image.webpsave_buffer(Q=80, strip=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    spec = variant_spec(320, format="webp")
    print(f"320 px WebP from the stored 2000 px photo; medians of {args.rounds} rounds, 1 thread")
    print(f"{'photo':45} {'render ms':>10} {'pyvips ms':>10} {'ratio':>6} {'bytes':>7} {'vips':>7}")
    ratios = []
    for name in SOURCES:
        stored = compress((CORPUS / name).read_bytes()).data
        ours, theirs = [], []
        for _ in range(args.rounds):  # interleaved: the machine's noise hits both
            start = time.perf_counter()
            mine = render(stored, spec)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            vips = vips_variant(stored, 320)
            theirs.append(time.perf_counter() - start)
        with Image.open(io.BytesIO(mine)) as a, Image.open(io.BytesIO(vips)) as b:
            assert a.width == b.width == 320, (a.size, b.size)
        ratio = statistics.median(ours) / statistics.median(theirs)
        ratios.append(ratio)
        print(
            f"{name:45} {statistics.median(ours) * 1000:10.1f} "
            f"{statistics.median(theirs) * 1000:10.1f} {ratio:6.2f} {len(mine):7} {len(vips):7}"
        )
    worst = max(ratios)
    verdict = "met" if worst <= 1.0 else "NOT MET"
    print(f"render / pyvips thumbnail_buffer: worst {worst:.2f} (target <= 1.0): {verdict}")


if __name__ == "__main__":
    main()
