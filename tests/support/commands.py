"""The project's commands run as a user runs them: ``python -m <module> <args>`` in a
process of its own, its output captured, its exit code left for the test to judge."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_module(
    module: str,
    *args: str,
    timeout: float = 600,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=env,
    )
