"""The ``shelflife`` command against a running local stack: every command, its tables
and its ``--json``, its progress output, and its errors and exit codes."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from shelflife.domain import clock
from shelflife_tools import cli
from shelflife_tools.client import ApiClient
from shelflife_tools.local import LOCAL_FOLDER, STACK_FILE
from shelflife_tools.local.stack import LocalStack
from tests.support.corpus import CORPUS

PHOTOS = sorted(
    str(p) for p in (CORPUS / "photos").iterdir() if p.suffix.lower() in (".jpg", ".jpeg")
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("cli")
    with LocalStack(api_port=0, folder=folder / LOCAL_FOLDER) as running:
        running.serve(interval=0.05)
        running.workdir = folder  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def here(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder the local stack was started in (where `shelflife local` writes how
    to reach it)."""
    folder: Path = stack.workdir  # type: ignore[attr-defined]
    monkeypatch.chdir(folder)
    (folder / LOCAL_FOLDER / STACK_FILE).write_text(json.dumps({"api_url": stack.api_url}))
    return folder


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def test_upload_waits_for_placement_and_prints_each_result(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = run("--user", "carol", "upload", *PHOTOS[:2])

    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["file", "id", "outcome", "tier"]
    assert all(" stored " in line and " temp " in line for line in lines[2:])
    assert len(lines) == 2 + 2
    progress = capsys.readouterr().err
    assert "[" in progress
    assert "2/2 done" in progress

    code, text = run("--user", "carol", "--json", "upload", PHOTOS[2], "--draft", "d1")
    (result,) = json.loads(text)
    assert (code, result["photo"]["state"], result["photo"]["draft_id"]) == (0, "active", "d1")


def test_photos_and_stats_show_the_callers_view(here: Path) -> None:
    run("--user", "dave", "upload", PHOTOS[0])

    code, text = run("--user", "dave", "--json", "photos")
    photos = json.loads(text)
    assert code == 0
    assert [p["state"] for p in photos] == ["active"]
    code, text = run("--user", "dave", "photos")
    assert photos[0]["id"] in text
    assert f"{photos[0]['id']}  {Path(PHOTOS[0]).name}" in text, "the file name it came with"
    code, text = run("--user", "dave", "--json", "stats")
    stats = json.loads(text)
    assert stats["photos"] >= 1
    code, text = run("--user", "dave", "stats")
    assert "temp" in text
    assert "a month" in text


def test_admin_commands(here: Path, stack: LocalStack) -> None:
    run("upload", PHOTOS[1])
    code, text = run("--json", "buckets")
    assert code == 0
    assert {b["tier"] for b in json.loads(text)} >= {"temp"}
    code, text = run("buckets")
    assert "tier" in text
    assert "full" in text

    code, text = run("--json", "sweep", "--dry-run")
    assert (code, json.loads(text)["dry_run"]) == (0, True)
    code, text = run("sweep")
    assert code == 0
    assert "lifecycle run" in text
    code, text = run("reschedule")
    assert code == 0
    assert "reschedule" in text
    assert "unchanged" in text  # the photos' schedules are the settings' already
    code, text = run("recommend", "--months", "2")
    assert code == 0
    assert "choose: " in text
    assert "HotBackend=r2" in text
    # Kept for the dashboard's chart of cost by strategy.
    kept = ApiClient(stack.api_url, stack.token("admin", admin=True)).get("/pricing")
    assert f"choose: {kept['choose']}" in text
    assert {"s3_intelligent_tiering", "oracle"} <= set(kept["strategies"])
    assert run("recommend", "--months", "0")[0] == 2

    code, text = run("--json", "reconcile")
    report = json.loads(text)
    assert (code, report["complete"], report["dry_run"]) == (0, True, True)
    code, text = run("reconcile", "--fix", "--yes")
    assert code == 0
    assert "(fix)" in text

    code, text = run("cleanup", "status")
    assert (code, text.split(":")[0]) == (0, "cleanup ok")
    code, text = run("--json", "cleanup", "redrive")
    assert (code, json.loads(text)["completed"]) == (0, 0)


def test_local_token_mints_what_the_stack_accepts(here: Path) -> None:
    code, text = run("local", "token", "--user", "erin", "--admin")
    token = text.strip()
    assert code == 0
    code, text = run(
        "--api-url",
        json.loads((here / LOCAL_FOLDER / STACK_FILE).read_text())["api_url"],
        "--token",
        token,
        "--json",
        "buckets",
    )
    assert code == 0


def test_errors_are_clear_and_exit_non_zero(
    here: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run("upload", str(tmp_path / "nope.jpg"))[0] == 2
    assert "not a file" in capsys.readouterr().err
    assert run("reconcile", "--adopt")[0] == 2
    assert "--adopt needs --fix" in capsys.readouterr().err
    assert run("--api-url", "http://127.0.0.1:9", "--token", "x", "photos")[0] == 2
    assert "no API answers" in capsys.readouterr().err
    url = json.loads((here / LOCAL_FOLDER / STACK_FILE).read_text())["api_url"]
    assert run("--api-url", url, "--token", "forged", "photos")[0] == 1
    assert "refused" in capsys.readouterr().err
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image")
    assert run("local", "--state", str(text_file))[0] == 2
    assert "--state" in capsys.readouterr().err
    code, text = run("upload", str(text_file))
    assert code == 1
    # Refused before ingest, in the file's row (the others would go on): the schema
    # lists the image types.
    assert re.search(r"^notes\.txt +\w+ +refused .*content_type", text, re.MULTILINE), text


def test_without_a_local_stack_it_says_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHELFLIFE_API_URL", raising=False)
    assert run("photos")[0] == 2
    assert "shelflife local" in capsys.readouterr().err


@contextlib.contextmanager
def shelflife_local(folder: Path, *options: str) -> Iterator[list[str]]:
    """``shelflife local`` started in ``folder`` in a session of its own, until the
    stack is up; then Ctrl-C as a terminal sends it, to the whole process group (moto's
    server too). Yields the list its output goes into once it has ended cleanly."""
    # As a shell in a terminal starts it: Ctrl-C raises KeyboardInterrupt. A test run
    # started in the background from a script inherits SIGINT ignored, and Python then
    # keeps ignoring it; the command would never see the Ctrl-C this test sends.
    command = [
        sys.executable,
        "-c",
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('shelflife_tools.cli', run_name='__main__')",
        "local",
        "--port",
        "0",
        *options,
    ]
    process = subprocess.Popen(
        command,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    stack_file = folder / LOCAL_FOLDER / STACK_FILE
    output: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not stack_file.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the local stack did not start"
            time.sleep(0.2)
        yield output
    finally:
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    assert not stack_file.exists()
    output.append(out)


def test_shelflife_local_serves_until_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    with shelflife_local(tmp_path, "--clock", "2030-06-01T00:00:00") as output:
        code, text = run("--user", "frank", "--json", "upload", PHOTOS[0])

    (result,) = json.loads(text)
    assert code == 0
    assert result["photo"]["uploaded_at"].startswith("2030-06-01")  # the stack's clock
    assert "dashboard" in output[0]


def test_shelflife_local_keeps_its_state_across_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "state"

    with shelflife_local(tmp_path, "--state", str(state)) as output:
        code, text = run("--user", "gina", "--json", "upload", PHOTOS[0])
    (result,) = json.loads(text)
    assert code == 0
    assert f"state: {state}" in output[0]
    with shelflife_local(tmp_path, "--state", str(state)):
        code, text = run("--user", "gina", "--json", "photos")

    assert [photo["id"] for photo in json.loads(text)] == [result["photo"]["id"]]


def shelflife(folder: Path, *argv: str, **streams: Any) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own, as a script runs it; stderr captured."""
    streams.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(
        [sys.executable, "-m", "shelflife_tools.cli", *argv],
        cwd=folder,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
        **streams,
    )


def test_a_question_without_a_terminal_is_an_error_not_a_traceback(here: Path) -> None:
    # Issue 19: `reconcile --fix` with nothing on standard input raised EOFError.
    done = shelflife(here, "reconcile", "--fix", stdin=subprocess.DEVNULL)

    assert done.returncode == cli.EXIT_NO_TERMINAL, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "shelflife: --fix deletes orphaned objects and marks records lost: no answer (no "
        "terminal?); pass --yes"
    )


def test_a_port_in_use_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = shelflife(tmp_path, "local", "--port", str(port))

    assert done.returncode == cli.EXIT_PORT_IN_USE, done.stderr
    assert "Traceback" not in done.stderr
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_output_into_a_closed_pipe_is_an_error_not_a_traceback(here: Path) -> None:
    for n in range(3):
        assert run("--user", "hank", "upload", PHOTOS[n])[0] == 0
    # `shelflife photos | head -1`, with a reader that has gone before the first line.
    reader, writer = os.pipe()
    os.close(reader)
    with os.fdopen(writer, "w") as closed:
        done = shelflife(here, "--user", "hank", "photos", stdout=closed)

    assert done.returncode == cli.EXIT_PIPE_CLOSED, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "shelflife: output closed before the end (a pipe's reader stopped)"
    ]


def test_stats_watch_shows_an_upload_and_ends_on_ctrl_c(here: Path) -> None:
    """Issue 22, part 4: ``stats --watch`` as a terminal runs it, in a session of its
    own (Ctrl-C goes to the group). It takes Ctrl-C even where the shell that started
    it ignores SIGINT, as a background job of a script does."""
    command = [sys.executable, "-m", "shelflife_tools.cli", "--user", "ivy", "--json"]
    process = subprocess.Popen(
        [*command, "stats", "--watch", "1"],
        cwd=here,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert process.stdout is not None
    try:
        first = json.loads(process.stdout.readline())["stats"]["photos"]
        assert run("--user", "ivy", "upload", PHOTOS[0])[0] == 0
        deadline = time.monotonic() + 30
        while json.loads(process.stdout.readline())["stats"]["photos"] <= first:
            assert time.monotonic() < deadline, "the upload never showed"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            _, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()  # Ctrl-C did not end it: do not leave it behind
            raise
    assert process.returncode == 0, err
    assert "Traceback" not in err, err


def test_export_writes_one_csv_or_one_json_array_over_every_page(here: Path) -> None:
    """Issue 22, part 3: ``shelflife export --format csv > photos.csv``."""
    for path in PHOTOS[:3]:
        assert run("--user", "jill", "upload", path)[0] == 0

    code, text = run("--user", "jill", "export", "--page-size", "1")
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].startswith("id,owner,state,tier,")
    assert sum(line.startswith("id,") for line in lines) == 1  # one header row
    exported = list(csv.DictReader(io.StringIO(text)))
    assert len(exported) == 3
    assert {row["owner"] for row in exported} == {"jill"}
    assert all(row["url"].startswith("http") for row in exported)

    code, text = run("--user", "jill", "--json", "export", "--page-size", "2")
    items = json.loads(text)
    assert code == 0
    assert sorted(i["id"] for i in items) == sorted(row["id"] for row in exported)
    code, text = run("--user", "jill", "export", "--tier", "cold")
    assert (code, text.splitlines()[1:]) == (0, [])
    code, _ = run("--user", "jill", "export", "--owner", "someone-else")
    assert code == cli.EXIT_REFUSED  # a user exports only their own


def test_history_and_audit_show_the_trail_through_the_local_stack(here: Path) -> None:
    """Issue 22, part 1: the audit function on the local stack's table stream, read
    back by ``shelflife history ID`` and ``shelflife audit``."""
    code, text = run("--user", "kim", "--json", "upload", PHOTOS[0])
    assert code == 0, text
    photo = json.loads(text)[0]["photo"]["id"]

    entries: list[dict[str, Any]] = []
    for _ in range(100):  # the stack's stream is polled in the background
        code, text = run("--user", "kim", "--json", "history", photo)
        entries = json.loads(text) if code == 0 else []
        if entries:
            break
        time.sleep(0.1)
    assert [(e["action"], e["actor"], e["after"]["tier"]) for e in entries] == [
        ("stored", "ingest", "temp")
    ]
    code, text = run("--user", "kim", "history", photo)
    assert code == 0
    assert text.splitlines()[0].split()[:4] == ["at", "photo", "action", "actor"]
    assert run("--user", "someone-else", "history", photo)[0] == cli.EXIT_REFUSED

    # An admin command: on the local stack its token is an admin's.
    code, text = run("--json", "audit", "--action", "stored")
    assert code == 0, text
    assert photo in {e["image_id"] for e in json.loads(text)}
    code, text = run("--json", "audit", "--actor", "user:nobody")
    assert (code, json.loads(text)) == (0, [])


def test_upload_labels_are_kept_with_the_photos_capture_facts(
    here: Path, stack: LocalStack
) -> None:
    """Issue 22, part 2: ``shelflife upload --label KEY=VALUE``, and the photo's capture
    facts through the local stack."""
    camera = str(CORPUS / "camera" / "DSCN0010.jpg")
    code, text = run("--user", "lena", "--json", "upload", camera, "--label", "trip=porto")
    assert code == 0, text
    photo = json.loads(text)[0]["photo"]["id"]
    capture = ApiClient(stack.api_url, stack.token("lena")).get(f"/photos/{photo}")["capture"]
    assert (capture["camera_model"], capture["labels"]) == ("COOLPIX P6000", {"trip": "porto"})
    code, _ = run("--user", "lena", "upload", camera, "--label", "no-equals-sign")
    assert code == cli.EXIT_USAGE
    code, _ = run("--user", "lena", "upload", camera, "--label", "Bad=key")
    assert code == cli.EXIT_REFUSED


def test_import_a_bucket_dry_run_then_run_through_the_local_stack(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 22, part 5: ``shelflife import`` of an S3 bucket with keys of any shape,
    owners from a prefix pattern, through the local stack's import function."""
    from shelflife.adapters.backends import S3Backend
    from shelflife.domain.storage import BucketPolicy

    s3 = S3Backend(region=os.environ["AWS_REGION"])
    s3.create_bucket("sync-script-bucket", BucketPolicy(tier="hot"))
    keys = {
        "team/mira/IMG 0001.jpg": PHOTOS[0],
        "team/mira/misc/IMG 0002.JPG": PHOTOS[1],
        "team/olaf/x.jpg": PHOTOS[2],
        "team/olaf/notes.txt": __file__,
    }
    for key, path in keys.items():
        s3.put("sync-script-bucket", key, Path(path).read_bytes(), content_type="image/jpeg")
    source = ["s3://sync-script-bucket/team/", "--owner-pattern", "^team/(?P<owner>[^/]+)/"]

    code, text = run("import", *source)
    assert code == 0, text
    assert "dry run" in text
    assert re.search(r"^to_import +3$", text, re.MULTILINE), text
    assert "team/olaf/notes.txt: unreadable" in text
    assert re.search(r"^cost: \$\d+\.\d{4} \(once, at the price book's list prices", text, re.M)
    assert "keys" in capsys.readouterr().err  # the progress bar, on stderr

    code, text = run("--json", "import", *source, "--run")
    report = json.loads(text)
    assert (code, report["complete"], report["counts"]["imported"]) == (0, True, 3)
    code, text = run("--user", "mira", "--json", "photos")
    assert len(json.loads(text)) == 2
    assert {s3.get("sync-script-bucket", key).data for key in keys} == {
        Path(path).read_bytes() for path in keys.values()
    }, "the source is untouched"

    code, text = run("--json", "import", "--resume", report["run_id"])
    assert (code, json.loads(text)["counts"]) == (0, report["counts"])
    assert run("import", "ftp://somewhere")[0] == cli.EXIT_USAGE
    assert run("import", *source[:1], "--owner-pattern", "(")[0] == cli.EXIT_REFUSED


def test_a_local_stack_parameter_must_be_name_equals_value() -> None:
    assert run("local", "--parameter", "ColdBackend")[0] == cli.EXIT_USAGE
    assert run("local", "--parameter", "=b2")[0] == cli.EXIT_USAGE


def test_every_photo_operation_has_a_command(
    here: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 23, part 4: url, download, usage, publish, delete, capacity, and the local
    stack's clock; --json before or after the subcommand."""
    code, text = run("--user", "nina", "--json", "upload", PHOTOS[0], "--draft", "trip")
    photo = json.loads(text)[0]["photo"]
    code, text = run("--user", "nina", "url", photo["id"])
    assert code == 0
    assert text.startswith("http://127.0.0.1:")
    code, text = run("--user", "nina", "download", photo["id"], "-o", str(tmp_path))
    assert code == 0, text
    (saved,) = tmp_path.iterdir()
    assert saved.name == f"{photo['id']}.jpg"
    assert saved.stat().st_size == photo["stored_size"]
    sized = tmp_path / "sized"
    sized.mkdir()
    code, text = run(
        "--user", "nina", "download", photo["id"], "--width", "160", "--fit", "cover",
        "--format", "webp", "-o", str(sized),
    )  # fmt: skip
    assert code == 0, text
    (variant,) = sized.iterdir()
    assert variant.name == f"{photo['id']}-160x160-cover.webp"
    with Image.open(variant) as image:
        assert (image.format, image.size) == ("WEBP", (160, 160))
    capsys.readouterr()
    code, text = run("--user", "nina", "download", photo["id"], "--width", "100")
    assert code == 1
    assert "w must be one of 160, 320" in capsys.readouterr().err
    code, text = run("--user", "nina", "usage", "--json")  # --json after the subcommand
    assert (code, json.loads(text)["photos"], json.loads(text)["variants"]) == (0, 1, 1)
    code, text = run("--user", "nina", "usage")
    assert re.search(r"^all +1 ", text, re.MULTILINE), text

    code, text = run("--user", "nina", "publish", "trip", photo["id"])
    assert code == 0
    assert f"{photo['id']}  published" in text
    code, text = run("--user", "nina", "--json", "publish", "trip", "0" * 32)
    assert code == 1
    assert json.loads(text)["failed"][0]["id"] == "0" * 32
    code, text = run("--user", "nina", "delete", photo["id"], "f" * 32)
    assert code == 1, "one of the two was refused"
    assert f"{photo['id']}  deleted" in text
    assert "refused" in text
    assert run("--user", "nina", "--json", "photos")[1].strip() == "[]"

    code, text = run("capacity", "--dry-run", "--json")
    assert code == 0
    assert {b["tier"] for b in json.loads(text)["buckets"]} >= {"temp"}
    before = clock.now()
    code, text = run("local", "clock", "+2h")
    assert code == 0, text
    assert clock.now() - before >= timedelta(hours=2)
    assert run("local", "clock", "soon")[0] == cli.EXIT_USAGE


def test_an_upload_of_many_files_goes_past_each_refusal_and_says_each_outcome(
    here: Path, tmp_path: Path
) -> None:
    """Issue 23, part 4: stored, a duplicate of which photo, rejected and why (by
    ingest), refused and why (before ingest); every file tried."""
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    files = [
        PHOTOS[3],
        str(CORPUS / "broken" / "truncated.jpg"),
        str(empty),
        PHOTOS[3],  # the same bytes again
    ]
    code, text = run("--user", "omar", "--json", "upload", *files)
    assert code == 1, "not every file was stored"
    outcomes = [(r["outcome"], r["duplicate_of"]) for r in json.loads(text)]
    first = json.loads(text)[0]["id"]
    assert outcomes == [
        ("stored", None),
        ("rejected", None),
        ("refused", None),
        ("duplicate", first),
    ]
    code, text = run("--user", "omar", "upload", PHOTOS[3], str(empty))
    assert code == 1
    assert f"duplicate of {first}" in text
    assert re.search(r"^empty\.jpg +\w+ +refused ", text, re.MULTILINE), text
    # The photo list marks the photo whose bytes were uploaded again.
    code, text = run("--user", "omar", "photos")
    assert re.search(rf"^{first}  \S+ +yes +active ", text, re.MULTILINE), text
    marked = [p["id"] for p in json.loads(run("--user", "omar", "--json", "photos")[1])
              if p["duplicated_at"]]  # fmt: skip
    assert marked == [first]
