"""The shared image corpus (../shared/corpus beside the project): read in place, never
copied into the project; and small generated photos where a test needs many distinct ones."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from tests.support.template import ROOT

CORPUS = ROOT.parent / "shared" / "corpus"


def corpus_file(relative: str) -> bytes:
    path = CORPUS / relative
    if not path.is_file():
        pytest.fail(f"{path} is missing: the corpus lives in ../shared/corpus beside the project")
    return path.read_bytes()


def corpus_names(*folders: str) -> list[str]:
    """``folder/name`` of every file in ``folders`` (default: every folder)."""
    if not CORPUS.is_dir():
        pytest.fail(f"{CORPUS} is missing: the corpus lives in ../shared/corpus beside the project")
    folders = folders or tuple(sorted(path.name for path in CORPUS.iterdir() if path.is_dir()))
    return sorted(
        f"{folder}/{path.name}"
        for folder in folders
        for path in (CORPUS / folder).iterdir()
        if path.is_file()
    )


def noisy_jpeg(seed: int) -> bytes:
    """About 3-4 KB of incompressible pixels, different for each seed: many distinct
    photos of a predictable size (placement and quota tests)."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (40, 30), rng.randbytes(40 * 30 * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()
