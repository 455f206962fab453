"""The coverage-guided fuzzer's fast subset (``make fuzz`` runs it for a minute): ten
seconds of atheris on ``compress``, seeded from the corpus, must end without a finding."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.commands import run_module
from tests.support.corpus import CORPUS

SECONDS = 10


def test_ten_seconds_of_fuzzing_compress_find_nothing(tmp_path: Path) -> None:
    done = run_module(
        "shelflife_tools.prove.fuzz_compress",
        str(CORPUS),
        f"-max_total_time={SECONDS}",
        "-rss_limit_mb=1536",
        f"-artifact_prefix={tmp_path}/",
        timeout=SECONDS + 120,
        cwd=tmp_path,
    )

    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    runs = re.search(r"Done (\d+) runs", output)
    assert runs is not None, output[-3000:]
    assert int(runs.group(1)) > 100  # it really fuzzed
    assert not list(tmp_path.glob("crash-*"))
