"""The API fuzzing's fast subset (``make prove`` runs 50 examples per operation):
schemathesis with 3 examples per operation as a user and as an admin, and the whole
cross-user matrix, against the local stack."""

from __future__ import annotations

from pathlib import Path

from tests.support.commands import run_module
from tests.support.corpus import CORPUS


def test_generated_requests_and_other_users_find_nothing(tmp_path: Path) -> None:
    done = run_module(
        "shelflife_tools.prove.api_fuzz", str(CORPUS), "--max-examples", "3", cwd=tmp_path
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("cross-user matrix:") and "0 problems" in line for line in lines)
    assert any(line.startswith("schemathesis as user: pass") for line in lines)
    assert any(line.startswith("schemathesis as admin: pass") for line in lines)


def test_the_run_refuses_a_folder_that_is_not_the_corpus(tmp_path: Path) -> None:
    done = run_module("shelflife_tools.prove.api_fuzz", str(tmp_path), timeout=60)

    assert done.returncode == 2
    assert "is not the image corpus" in done.stderr
