"""Coverage-guided fuzzing of ``shelflife.domain.imaging.compress`` with atheris (``make
fuzz``): any input must come back compressed or as ``RejectedImage``; anything else
raised is a finding, and atheris writes the input that caused it as ``crash-*``.

Seeds are the corpus's raster images, copied to a folder in the system's temporary space
(never into the project); libFuzzer options pass through (``-max_total_time=60``,
``-rss_limit_mb=1536``). Findings are written to ``.fuzz/`` unless
``-artifact_prefix=`` says otherwise.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from shelflife.domain.errors import RejectedImage
    from shelflife.domain.imaging import CompressionPolicy, compress

# Small limits keep each run fast; the rules are the same as with the defaults.
POLICY = CompressionPolicy(max_bytes=2 * 1024**2, max_pixels=4_000_000, max_side_px=512)


def test_one_input(data: bytes) -> None:
    with contextlib.suppress(RejectedImage):
        compress(data, POLICY)


def seeds(corpus: Path, into: Path) -> Path:
    """A seed folder with the corpus's small raster images (libFuzzer adds to it)."""
    into.mkdir(parents=True, exist_ok=True)
    for path in sorted(corpus.rglob("*")):
        raster = path.suffix.lower() in {".jpg", ".jpeg", ".png", ".gif", ".webp"}
        if raster and path.is_file() and path.stat().st_size <= 256 * 1024:
            (into / path.name).write_bytes(path.read_bytes())
    return into


def main() -> None:
    args = sys.argv[1:]
    corpus = Path(args.pop(0)) if args and not args[0].startswith("-") else Path("../shared/corpus")
    if not any(arg.startswith("-artifact_prefix=") for arg in args):
        Path(".fuzz").mkdir(exist_ok=True)
        args.append("-artifact_prefix=.fuzz/")
    # One folder in the system's temporary space, emptied each run: libFuzzer ends the
    # process itself, so a folder removed on exit would never be.
    folder = Path(tempfile.gettempdir()) / "shelflife-fuzz-compress"
    shutil.rmtree(folder, ignore_errors=True)
    atheris.Setup([sys.argv[0], str(seeds(corpus, folder)), *args], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
