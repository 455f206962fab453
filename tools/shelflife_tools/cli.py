"""``shelflife``: run the local stack, and operate a stack (local or deployed) through
its HTTP API.

Which API: ``--api-url`` (or ``SHELFLIFE_API_URL``) with ``--token`` (or
``SHELFLIFE_TOKEN``); or ``--stack NAME`` (or ``--stack`` alone for samconfig.toml's
stack name), whose ``ApiUrl`` output is read from CloudFormation; or, by default, the
local stack started by ``shelflife local`` in this folder, with a token it mints for
``--user`` (an admin token for admin commands).

Tables for people by default, ``--json`` for scripts. Exit codes: 0 done, 1 the API
refused or something is wrong (drift remains, an upload was rejected), 2 usage or
connection errors.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import re
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from shelflife.domain.units import human_bytes
from shelflife_tools import simulate
from shelflife_tools.client import ApiClient, ApiError, Unreachable, UploadResult
from shelflife_tools.console import bar, print_stats, table, wait_for_interrupt
from shelflife_tools.demo import run_demo
from shelflife_tools.local import LOCAL_FOLDER, STACK_FILE

# Commands that need the admin group.
ADMIN_COMMANDS = {
    "audit",
    "buckets",
    "sweep",
    "reschedule",
    "reconcile",
    "cleanup",
    "recommend",
    "import",
    "capacity",
}


# Exit codes, one per kind of failure, so a script can tell them apart (README).
EXIT_REFUSED = 1  # the API answered an error, or a check found a problem
EXIT_USAGE = 2  # the command line is wrong, or no API answers
EXIT_NO_TERMINAL = 4  # a question needs an answer and there is no one to ask
EXIT_PORT_IN_USE = 5  # `shelflife local` cannot listen where it was told to
EXIT_PIPE_CLOSED = 141  # what a shell reports for a pipe closed under a writer (SIGPIPE)


class UsageError(Exception):
    pass


class NoTerminal(Exception):
    """A confirmation was asked and standard input ended without an answer."""


class PortInUse(Exception):
    pass


def confirm(question: str) -> bool:
    """The user's yes to ``question``; ``NoTerminal`` when nothing can answer (CI, a
    cron job, input from /dev/null): better an error than a change nobody approved."""
    try:
        answer = input(question)
    except EOFError:
        what = question.split(".")[0]
        raise NoTerminal(f"{what}: no answer (no terminal?); pass --yes") from None
    return answer.strip().lower() in ("y", "yes")


# ---- output --------------------------------------------------------------------------


# ---- which API -----------------------------------------------------------------------


def samconfig_stack_name(path: Path = Path("samconfig.toml")) -> str:
    if not path.exists():
        raise UsageError(
            "--stack without a name needs samconfig.toml here (sam deploy --guided writes it)"
        )
    config = tomllib.loads(path.read_text())
    name = config.get("default", {}).get("global", {}).get("parameters", {}).get("stack_name")
    if not name:
        raise UsageError("samconfig.toml names no stack_name under [default.global.parameters]")
    return str(name)


def deployed_api_url(stack: str) -> str:
    import boto3

    outputs = (
        boto3.client("cloudformation")
        .describe_stacks(StackName=stack)["Stacks"][0]
        .get("Outputs", [])
    )
    for output in outputs:
        if output["OutputKey"] == "ApiUrl":
            return str(output["OutputValue"])
    raise UsageError(f"stack {stack} has no ApiUrl output (deployed before the API?)")


def client_for(args: argparse.Namespace) -> ApiClient:
    admin = args.command in ADMIN_COMMANDS
    token = args.token or os.environ.get("SHELFLIFE_TOKEN")
    url = args.api_url or os.environ.get("SHELFLIFE_API_URL")
    if args.stack is not None:
        url = deployed_api_url(args.stack or samconfig_stack_name())
    if url is None:
        url, local_token = local_api(args.user, admin=admin)
        token = token or local_token
    if not token:
        raise UsageError("no token: pass --token (or set SHELFLIFE_TOKEN) for a deployed stack")
    return ApiClient(url, token)


def local_api(user: str, *, admin: bool) -> tuple[str, str]:
    from shelflife_tools.local.tokens import TokenIssuer

    path = LOCAL_FOLDER / STACK_FILE
    if not path.exists():
        raise UsageError(
            "no local stack here: start one with `shelflife local` (or pass --api-url)"
        )
    stack = json.loads(path.read_text())
    return str(stack["api_url"]), TokenIssuer.in_folder(LOCAL_FOLDER).token(user, admin=admin)


# ---- commands --------------------------------------------------------------------------


def _labels(pairs: list[str] | None) -> dict[str, str] | None:
    """``--label KEY=VALUE`` options as the labels of an upload (the API checks them)."""
    labels: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--label {pair!r}: give KEY=VALUE")
        labels[key] = value
    return labels or None


def cmd_upload(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    """Each file in turn, waiting until ingest has placed or rejected it; a file refused
    goes in the table with its reason and the others go on. Exit 1 if any was not
    stored (or folded into the same photo uploaded before)."""
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"not a file: {', '.join(missing)}")
    results: list[UploadResult] = []
    for index, path in enumerate(paths):
        bar(index, len(paths), f"uploading {path.name}", sys.stderr)
        results.append(
            client.upload(path, draft_id=args.draft, labels=_labels(args.label), wait=args.wait)
        )
    bar(len(paths), len(paths), "done", sys.stderr)
    if args.json:
        json.dump(
            [
                {
                    "path": str(r.path),
                    "id": r.photo_id,
                    "outcome": r.outcome,
                    "duplicate_of": r.duplicate_of,
                    "refused": r.refused,
                    "bytes_in": r.bytes_in,
                    "photo": r.photo,
                }
                for r in results
            ],
            out,
            indent=2,
        )
        out.write("\n")
    else:
        table(
            [upload_row(r) for r in results],
            ["file", "id", "outcome", "tier", "bytes in", "stored", "note"],
            out,
        )
    return 0 if all(r.ok for r in results) else 1


def upload_row(result: UploadResult) -> list[Any]:
    photo = result.photo or {}
    notes = {
        "refused": result.refused,
        "waiting": "not placed in time",
        "rejected": photo.get("rejection_reason"),
        "duplicate": f"duplicate of {result.duplicate_of}: nothing new stored",
    }
    return [
        result.path.name,
        result.photo_id,
        result.outcome,
        photo.get("tier") or "-",
        human_bytes(result.bytes_in),
        human_bytes(photo["stored_size"]) if photo.get("stored_size") else "-",
        notes.get(result.outcome) or "",
    ]


def cmd_photos(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    photos = list(client.photos())
    if args.json:
        print_json(photos, out)
        return 0
    table(
        [
            [
                p["id"],
                (p.get("filename") or "-")[:40],
                # Uploaded again by its owner (the duplicates stored nothing new).
                "yes" if p.get("duplicated_at") else "",
                p["state"],
                p["tier"] or "-",
                p["format"] or "-",
                human_bytes(p["stored_size"]),
                p["uploaded_at"][:19],
                p["next_action"] or "-",
                (p["due_at"] or "-")[:19],
            ]
            for p in photos
        ],
        ["id", "file", "again", "state", "tier", "format", "stored", "uploaded", "next", "due"],
        out,
    )
    return 0


def cmd_stats(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.watch is not None:
        return watch_stats(client, args.watch, out, as_json=args.json)
    stats = client.get("/stats")
    if args.json:
        print_json(stats, out)
        return 0
    print_stats(stats, out)
    return 0


# A terminal's "clear the screen, cursor home" (ANSI); a pipe gets a plain separator.
_CLEAR = "\x1b[H\x1b[2J"


def watch_stats(
    client: ApiClient,
    seconds: float,
    out: TextIO,
    *,
    as_json: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """``GET /stats`` again every ``seconds`` until Ctrl-C, which ends it with 0: on a
    terminal the table is redrawn in place; otherwise each refresh follows the last
    (with ``--json``, one JSON document a line). A refresh the API refuses or cannot
    answer is said in one line, and the next one tries again."""
    if not 1 <= seconds <= 86_400 or not math.isfinite(seconds):
        raise UsageError(f"--watch takes 1-86400 seconds, got {seconds:g}")
    # Ctrl-C must reach us even when started from a shell that ignores SIGINT in
    # background jobs (the handler is inherited as "ignore").
    with suppress(ValueError):  # not the main thread (tests): nothing to restore
        signal.signal(signal.SIGINT, signal.default_int_handler)
    terminal = out.isatty() and not as_json
    try:
        while True:
            stamp = f"{now():%Y-%m-%d %H:%M:%S} UTC"
            try:
                stats = client.get("/stats")
            except (ApiError, Unreachable) as e:
                out.write(f"{stamp}  not updated: {e}\n")
            else:
                if as_json:
                    out.write(json.dumps({"at": stamp, "stats": stats}) + "\n")
                else:
                    out.write(_CLEAR if terminal else "\n")
                    out.write(f"{stamp}, every {seconds:g} s (Ctrl-C ends)\n")
                    print_stats(stats, out)
            out.flush()
            sleep(seconds)
    except KeyboardInterrupt:
        out.write("\n")
        return 0


def cmd_export(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    """Every page of ``GET /photos/export`` as one CSV (the header row once) or one
    JSON array, written as the pages come (a large export is never held whole)."""
    export_format = "json" if args.json else args.format
    filters = {
        "owner": args.owner,
        "tier": args.tier,
        "state": args.state,
        "since": args.since,
        "until": args.until,
    }
    pages = client.export_pages(export_format, page_size=args.page_size, **filters)
    if export_format == "csv":
        for index, page in enumerate(pages):
            # Each page starts with the header row: keep the first page's only.
            out.write(page if index == 0 else page.split("\n", 1)[1])
        return 0
    out.write("[")
    first = True
    for page in pages:
        for item in json.loads(page)["items"]:
            out.write(("\n" if first else ",\n") + json.dumps(item))
            first = False
    out.write("\n]\n")
    return 0


def _entries(client: ApiClient, path: str, **query: Any) -> Iterator[dict[str, Any]]:
    """Every entry of an audit route, page after page."""
    cursor: str | None = None
    while True:
        page = client.get(path, limit=1000, cursor=cursor, **query)
        yield from page["items"]
        cursor = page["cursor"]
        if cursor is None:
            return


def _place(place: dict[str, Any] | None) -> str:
    return f"{place['tier']}:{place['bucket']}" if place else "-"


def _print_entries(entries: list[dict[str, Any]], args: argparse.Namespace, out: TextIO) -> int:
    if args.json:
        print_json(entries, out)
        return 0
    table(
        [
            [
                e["at"][:19],
                e["image_id"],
                e["action"],
                e["actor"],
                _place(e["before"]),
                _place(e["after"]),
                e["reason"] or "-",
            ]
            for e in entries
        ],
        ["at", "photo", "action", "actor", "before", "after", "reason"],
        out,
    )
    return 0


def cmd_history(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    """``GET /photos/{id}/history``: every change to one photo, oldest first."""
    entries = list(_entries(client, f"/photos/{quote(args.photo_id, safe='')}/history"))
    return _print_entries(entries, args, out)


def cmd_audit(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    """``GET /audit``: the trail of every photo between two times (admin)."""
    query = {
        "since": args.since,
        "until": args.until,
        "actor": args.actor,
        "action": args.action,
        "photo_id": args.photo,
    }
    # A scan's pages come in no order: the whole trail, by time.
    entries = sorted(_entries(client, "/audit", **query), key=lambda e: (e["at"], e["image_id"]))
    return _print_entries(entries, args, out)


def cmd_recommend(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    from shelflife_tools import recommend

    if not 1 <= args.months <= 120:
        raise UsageError(f"--months must be 1-120, got {args.months}")
    measured = client.get("/workload", days=args.days)
    try:
        answer = recommend.recommend(measured, args.months)
    except recommend.NothingMeasured as e:
        raise UsageError(str(e)) from e
    # Kept for the dashboard's chart of cost by strategy (GET /pricing).
    client.put("/pricing", recommend.pricing(answer))
    if args.json:
        print_json(answer, out)
        return 0
    recommend.print_recommendation(answer, out)
    return 0


def cmd_buckets(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    buckets = client.get("/buckets")["buckets"]
    if args.json:
        print_json(buckets, out)
        return 0
    table(
        [
            [
                b["tier"],
                b["name"],
                b["backend"],
                b["status"],
                b["object_count"],
                human_bytes(b["used_bytes"]),
                human_bytes(b["capacity_bytes"]),
                f"{b['percent']:.1f}%",
            ]
            for b in buckets
        ],
        ["tier", "bucket", "backend", "status", "objects", "used", "capacity", "full"],
        out,
    )
    return 0


def cmd_sweep(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    return _lifecycle(client.post("/lifecycle/run", {"dry_run": args.dry_run}), args, out)


def cmd_reschedule(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    report = client.post("/lifecycle/reschedule", {"dry_run": args.dry_run})
    return _lifecycle(report, args, out)


def _lifecycle(report: dict[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    if args.json:
        print_json(report, out)
        return 0
    counts = report.get("counts", {})
    kind = "reschedule" if report.get("reschedule") else "lifecycle run"
    out.write(
        f"{kind} {report.get('run_id')}{' (dry run)' if args.dry_run else ''}"
        f"{'' if report.get('complete', True) else ' stopped short; it continues by itself'}\n"
    )
    table(
        [[name, value] for name, value in sorted(counts.items()) if value],
        ["outcome", "images"],
        out,
    )
    return 0


def cmd_reconcile(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.adopt and not args.fix:
        raise UsageError("--adopt needs --fix")
    question = "--fix deletes orphaned objects and marks records lost. Go on? [y/N] "
    if args.fix and not args.yes and not confirm(question):
        sys.stderr.write("nothing changed\n")
        return EXIT_USAGE
    body: dict[str, Any] = {"fix": args.fix, "adopt": args.adopt}
    while True:
        report = client.post("/reconcile", body)
        progress = report.get("progress", {})
        done = progress.get("buckets", 1) if report["complete"] else progress.get("bucket", 0)
        bar(
            done,
            progress.get("buckets", 1),
            f"{report['counts'].get('objects', 0)} objects",
            sys.stderr,
        )
        if report["complete"]:
            break
        body = {"run_id": report["run_id"]}
    if args.json:
        print_json(report, out)
    else:
        counts = report["counts"]
        out.write(
            f"reconcile {report['run_id']} ({'fix' if args.fix else 'dry run'}): "
            f"{counts.get('objects', 0)} objects, {counts.get('records', 0)} live records\n"
        )
        kinds = ["orphaned", "missing", "size_mismatch", "checksum_mismatch", "counters"]
        table([[kind, counts.get(kind, 0)] for kind in kinds], ["drift", "found"], out)
        for line in report.get("recommendations", []):
            out.write(f"- {line}\n")
    drift = sum(
        report["counts"].get(kind, 0)
        for kind in ("orphaned", "missing", "size_mismatch", "checksum_mismatch", "counters")
    )
    fixed = sum(
        report["counts"].get(kind, 0)
        for kind in ("deleted", "adopted", "marked_lost", "counters_corrected")
    )
    return 0 if drift - fixed <= 0 else 1


_SOURCE = re.compile(r"^(?P<backend>s3|r2|b2)://(?P<bucket>[^/]+)/?(?P<prefix>.*)$")


def cmd_import(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    """A dry run (the default) or a run, a step at a time through the API until it is
    complete, with a progress bar; ``--resume RUN_ID`` goes on with one that stopped
    (the CLI was interrupted, the network went away)."""
    if args.resume:
        body: dict[str, Any] = {"run_id": args.resume}
    else:
        if not args.source:
            raise UsageError("give the bucket to import (s3://bucket/prefix), or --resume RUN_ID")
        where = _SOURCE.match(args.source)
        if where is None:
            raise UsageError(
                f"{args.source!r} is not a bucket: write s3://bucket/prefix, r2://... or b2://..."
            )
        body = {
            "source": where.groupdict(),
            "owner": args.owner,
            "owner_pattern": args.owner_pattern,
            "compress": not args.keep_originals,
            "dry_run": not args.run,
        }
        body = {key: value for key, value in body.items() if value is not None}
    report = client.post("/imports", body)
    sys.stderr.write(
        f"import {report['run_id']} ({'dry run' if report['dry_run'] else 'run'}); "
        f"if it is interrupted: shelflife import --resume {report['run_id']}\n"
    )
    while True:
        progress = report.get("progress", {})
        done, expected = progress.get("done", 0), progress.get("expected")
        total = expected if expected else max(done, 1)
        bar(done if not report["complete"] else total, total, "keys", sys.stderr)
        if report["complete"]:
            break
        report = client.post("/imports", {"run_id": report["run_id"]})
    if args.json:
        print_json(report, out)
        return 0
    counts = report["counts"]
    source = report["source"]
    out.write(
        f"import {report['run_id']} of {source['backend']}://{source['bucket']}/"
        f"{source['prefix']} ({'dry run' if report['dry_run'] else 'run'}): "
        f"{counts.get('listed', 0)} keys\n"
    )
    names = ["to_import", "to_hot", "to_cold"] if report["dry_run"] else ["imported"]
    names += ["already_present", "unreadable", "no_owner", "vanished"]
    if not report["dry_run"]:
        names += ["imported_hot", "imported_cold", "stored_bytes"]
    table([[name, counts.get(name, 0)] for name in names], ["", "count"], out)
    kinds = sorted(report["types"].items(), key=lambda item: -item[1]["files"])
    table([[kind, t["files"], t["bytes"]] for kind, t in kinds], ["type", "files", "bytes"], out)
    cost = report.get("cost", {})
    if "total_usd" in cost:
        out.write(f"cost: ${cost['total_usd']:.4f} ({cost['baseline']})\n")
    for problem in report["problems"][:20]:
        out.write(f"! {problem['key']}: {problem['problem']} ({problem['reason']})\n")
    if len(report["problems"]) > 20:
        out.write(f"! ... and more: --json lists up to {len(report['problems'])}\n")
    for line in report["recommendations"]:
        out.write(f"- {line}\n")
    return 0


def cmd_cleanup(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "redrive":
        answer = client.post("/cleanup/redrive", {"max_messages": args.max_messages})
    else:
        answer = client.get("/cleanup")
    if args.json:
        print_json(answer, out)
    elif args.action == "redrive":
        table(
            [[k, v] for k, v in answer.items() if not isinstance(v, list | dict)],
            ["redrive", ""],
            out,
        )
    else:
        out.write(
            f"cleanup {answer['status']}: {answer['dead_letters']} dead letters, "
            f"{answer['pending']} pending retries, {answer['failed_last_hour']} failed in the "
            "last hour\n"
        )
        for reason in answer["reasons"]:
            out.write(f"- {reason}\n")
    return 0 if args.action == "redrive" or answer["status"] == "ok" else 1


# ---- one photo, and the caller's usage (issue 23, part 4) ----------------------------


def print_json(value: Any, out: TextIO) -> None:
    json.dump(value, out, indent=2)
    out.write("\n")


def _done(
    answers: list[dict[str, Any]], headers: list[str], args: argparse.Namespace, out: TextIO
) -> int:
    """Per-item results (each with ``ok``) as JSON or a table; 1 if any failed."""
    if args.json:
        print_json(answers, out)
    else:
        table([[a.get(h, "") for h in headers] for a in answers], headers, out)
    return 0 if all(a["ok"] for a in answers) else 1


def cmd_delete(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    """Each photo deleted in turn; one the API refuses does not stop the others."""
    answers = []
    for photo in args.photo_ids:
        try:
            client.delete(f"/photos/{photo}")
        except ApiError as e:
            answers.append({"id": photo, "ok": False, "result": f"refused: {e}"})
        else:
            answers.append({"id": photo, "ok": True, "result": "deleted"})
    return _done(answers, ["id", "result"], args, out)


def cmd_publish(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    answer = client.post(f"/drafts/{args.draft_id}/publish", {"photo_ids": args.photo_ids})
    if args.json:
        print_json(answer, out)
    else:
        rows = [[photo, "published", ""] for photo in answer.get("updated", [])]
        rows += [[f["id"], "not published", f["reason"]] for f in answer.get("failed", [])]
        table(rows, ["id", "result", "why"], out)
    return 0 if not answer.get("failed") else 1


def cmd_url(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    answer = client.get(f"/photos/{args.photo_id}/url")
    if args.json:
        print_json(answer, out)
    else:
        out.write(f"{answer['url']}\n")
    return 0


_SUFFIXES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/avif": ".avif",
    "image/gif": ".gif",
}


def cmd_download(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    """The stored photo through its URL, whatever tier it is in; with ``--width``, a
    sized variant of it (``GET /photos/{id}/image``, rendered on its first request)."""
    variant_only = {
        "--height": args.height is not None,
        "--fit": args.fit != "contain",
        "--format": args.format != "jpeg",
    }
    if args.width is None and any(variant_only.values()):
        # Without --width the stored photo is fetched as it is: these would be ignored.
        given = ", ".join(name for name, set_ in variant_only.items() if set_)
        raise UsageError(f"{given} choose a sized variant: give --width too")
    if args.width is None:
        url = client.get(f"/photos/{args.photo_id}/url")["url"]
        stem = args.photo_id
    else:
        variant = client.get(
            f"/photos/{args.photo_id}/image",
            w=args.width,
            h=args.height,
            fit=args.fit,
            format=args.format,
            redirect="false",
        )
        url, stem = variant["url"], f"{args.photo_id}-{variant['name'].rpartition('.')[0]}"
    response = client.fetch(url)
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    name = f"{stem}{_SUFFIXES.get(kind, '')}"
    target = Path(args.output or name)
    if target.is_dir():
        target = target / name
    target.write_bytes(response.content)
    result = {"id": args.photo_id, "path": str(target), "bytes": len(response.content)}
    if args.json:
        print_json(result, out)
    else:
        out.write(f"{target} ({human_bytes(len(response.content))})\n")
    return 0


def cmd_usage(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    usage = client.get("/users/me/usage")
    if args.json:
        print_json(usage, out)
        return 0
    rows = [[tier, t["photos"], human_bytes(t["bytes"])] for tier, t in usage["tiers"].items()]
    rows.append(["all", usage["photos"], human_bytes(usage["bytes"])])
    table(rows, ["tier", "photos", "stored"], out)
    if usage.get("quota_bytes") is not None:
        out.write(
            f"quota {human_bytes(usage['quota_bytes'])}, "
            f"{human_bytes(usage['remaining_bytes'] or 0)} left\n"
        )
    return 0


def cmd_capacity(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    """A capacity check now (admin): usage per bucket, cleanup and overflow as due."""
    report = client.post("/capacity/run", {"dry_run": args.dry_run})
    if args.json:
        print_json(report, out)
        return 0
    table(
        [
            [b["tier"], b["name"], f"{b['percent']:.1f} %", b.get("status") or "-"]
            for b in report.get("buckets", [])
        ],
        ["tier", "bucket", "used", "status"],
        out,
    )
    return 0


COMMANDS = {
    "upload": cmd_upload,
    "photos": cmd_photos,
    "stats": cmd_stats,
    "export": cmd_export,
    "history": cmd_history,
    "audit": cmd_audit,
    "buckets": cmd_buckets,
    "sweep": cmd_sweep,
    "reschedule": cmd_reschedule,
    "recommend": cmd_recommend,
    "reconcile": cmd_reconcile,
    "cleanup": cmd_cleanup,
    "import": cmd_import,
    "delete": cmd_delete,
    "publish": cmd_publish,
    "url": cmd_url,
    "download": cmd_download,
    "usage": cmd_usage,
    "capacity": cmd_capacity,
}


# ---- the local stack -------------------------------------------------------------------


def cmd_local(args: argparse.Namespace, out: TextIO) -> int:
    from shelflife_tools.local.stack import LocalStack, utc
    from shelflife_tools.local.tokens import TokenIssuer

    if args.local_action == "token":
        user = args.token_user or args.user
        out.write(TokenIssuer.in_folder(LOCAL_FOLDER).token(user, admin=args.admin) + "\n")
        return 0
    if args.local_action == "clock":
        return move_local_clock(args, out)
    if args.state and Path(args.state).exists() and not Path(args.state).is_dir():
        # Found only at the stop, when the state is saved, otherwise.
        raise UsageError(f"--state {args.state}: not a folder")
    parameters = {}
    for pair in args.parameter or []:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise UsageError(f"--parameter {pair!r}: write NAME=VALUE (a template parameter)")
        parameters[name] = value
    stack = LocalStack(
        api_port=args.port,
        folder=LOCAL_FOLDER,
        start_at=utc(args.clock) if args.clock else None,
        state=Path(args.state) if args.state else None,
        parameters=parameters,
    )
    try:
        stack.start()
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(
            f"port {args.port} on 127.0.0.1 is in use (another shelflife local?): "
            "stop it or pass --port"
        ) from None
    try:
        (LOCAL_FOLDER / STACK_FILE).write_text(
            json.dumps({"api_url": stack.api_url, "moto": stack.endpoint})
        )
        stack.serve()
        accelerate(args.speed)
        out.write(
            f"shelflife local stack: API {stack.api_url}\n"
            f"dashboard: {stack.dashboard_link()}\n"
            f"alice's gallery: {stack.gallery_link('alice')}\n"
            f"tokens: shelflife local token --user alice [--admin]\n"
            f"clock: {args.speed}x{' from ' + args.clock if args.clock else ''}; "
            f"state: {args.state or 'in memory'}; Ctrl-C stops\n"
        )
        out.flush()
        wait_for_interrupt()
    finally:
        stack.stop()
        (LOCAL_FOLDER / STACK_FILE).unlink(missing_ok=True)
    return 0


_AMOUNT = re.compile(r"^\+?(?P<n>\d+(?:\.\d+)?)(?P<unit>[dhms])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def move_local_clock(args: argparse.Namespace, out: TextIO) -> int:
    """``shelflife local clock +30d``: the running local stack's clock moved on, each
    schedule that came due run, and what follows delivered (its gateway's
    ``/_local/clock``, with an admin token of the stack's issuer)."""
    if not args.amount:
        raise UsageError("shelflife local clock AMOUNT: how far on, as +30d, 12h, 90m or 45s")
    amount = _AMOUNT.match(args.amount)
    if amount is None:
        raise UsageError(f"{args.amount!r} is not an amount: write +30d, 12h, 90m or 45s")
    delta = timedelta(**{_UNITS[amount["unit"]]: float(amount["n"])})
    url, token = local_api(args.user, admin=True)
    answer = ApiClient(url, token).post("/_local/clock", {"seconds": delta.total_seconds()})
    if args.json:
        print_json(answer, out)
    else:
        out.write(f"the local stack's clock: {answer['now']}\n")
    return 0


def accelerate(speed: float) -> Callable[[], None]:
    """Run the stack's clock ``speed`` times as fast as the wall clock; the function
    returned stops it (the clock stays where it got to)."""
    stopped = threading.Event()
    if speed == 1:
        return stopped.set
    from shelflife.domain import clock

    def tick() -> None:
        while not stopped.wait(1):
            clock.set_clock(offset=timedelta(seconds=speed - 1))

    threading.Thread(target=tick, name="shelflife-clock", daemon=True).start()
    return stopped.set


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    return run_demo(
        corpus=Path(args.corpus),
        folders=args.folders,
        serve=args.serve,
        port=args.port,
        out=out,
    )


# ---- arguments -------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="shelflife", description="Run and operate shelflife.")
    top.add_argument("--api-url", help="the API's base URL (default: the local stack here)")
    top.add_argument("--token", help="a bearer token for the API (SHELFLIFE_TOKEN)")
    top.add_argument(
        "--stack",
        nargs="?",
        const="",
        default=None,
        help="a deployed stack's name (alone: samconfig.toml's)",
    )
    top.add_argument(
        "--user", default="demo", help="local stack only: whose token to mint (default demo)"
    )
    top.add_argument("--json", action="store_true", help="print JSON instead of tables")
    commands = top.add_subparsers(dest="command", required=True, metavar="command")

    local = commands.add_parser("local", help="run the whole bundle on this machine until Ctrl-C")
    local.add_argument(
        "local_action", nargs="?", choices=["serve", "token", "clock"], default="serve"
    )
    local.add_argument(
        "amount",
        nargs="?",
        help="clock: how far to move the running stack's clock on (+30d, 12h, 90m, 45s)",
    )
    local.add_argument(
        "--port", type=int, default=3000, help="the API's port on 127.0.0.1 (default 3000)"
    )
    local.add_argument("--clock", help="start the clock at this ISO time (UTC)")
    local.add_argument(
        "--speed", type=float, default=1.0, help="the clock runs this many times as fast"
    )
    local.add_argument("--state", help="keep the stack's state in this folder across restarts")
    local.add_argument(
        "--parameter",
        action="append",
        metavar="NAME=VALUE",
        help="a template parameter, as sam deploy takes it (HotBackend=r2, ColdBackend=b2)",
    )
    local.add_argument("--user", dest="token_user", help="token: whose (default: --user)")
    local.add_argument("--admin", action="store_true", help="token: in the admin group")

    upload = commands.add_parser("upload", help="upload images and wait until each is placed")
    upload.add_argument("paths", nargs="+", metavar="PATH")
    upload.add_argument("--draft", help="the draft the images belong to")
    upload.add_argument(
        "--label",
        action="append",
        metavar="KEY=VALUE",
        help="a label kept with each photo (repeat for more; at most 10)",
    )
    upload.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for each placement"
    )
    commands.add_parser("photos", help="your photos")
    deleting = commands.add_parser("delete", help="delete photos (each in turn)")
    deleting.add_argument("photo_ids", nargs="+", metavar="ID")
    publishing = commands.add_parser("publish", help="publish a draft's photos")
    publishing.add_argument("draft_id", metavar="DRAFT")
    publishing.add_argument("photo_ids", nargs="+", metavar="ID")
    url = commands.add_parser("url", help="a signed URL of a photo, in whatever tier it is")
    url.add_argument("photo_id", metavar="ID")
    download = commands.add_parser("download", help="download a photo, from any tier")
    download.add_argument("photo_id", metavar="ID")
    download.add_argument("-o", "--output", help="a file or folder (default: ID.jpg here)")
    download.add_argument("--width", type=int, help="a sized variant this wide (VariantWidths)")
    download.add_argument("--height", type=int, help="and this high (with --fit cover: cropped)")
    download.add_argument("--fit", choices=("contain", "cover"), default="contain")
    download.add_argument("--format", choices=("auto", "jpeg", "webp", "avif"), default="jpeg")
    commands.add_parser("usage", help="what you store, per tier, against your quota")
    capacity = commands.add_parser("capacity", help="check capacity now (admin)")
    capacity.add_argument("--dry-run", action="store_true")
    export = commands.add_parser(
        "export",
        help="your photos (an admin: everyone's) with a fresh URL each, as CSV or JSON",
    )
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--owner", help="one owner's photos (admin)")
    export.add_argument("--tier", choices=("temp", "hot", "cold"))
    export.add_argument("--state", help="active, pending, rejected, deleted or lost")
    export.add_argument("--since", help="uploaded at or after (ISO 8601, UTC)")
    export.add_argument("--until", help="uploaded before (ISO 8601, UTC)")
    export.add_argument(
        "--page-size", type=int, default=500, help="records a request reads (1-1000)"
    )
    history = commands.add_parser(
        "history", help="every change to one photo: what, who, why, from where to where"
    )
    history.add_argument("photo_id", metavar="ID")
    audit = commands.add_parser("audit", help="the audit trail of every photo (admin)")
    audit.add_argument("--since", help="from (ISO 8601, UTC; default a day ago)")
    audit.add_argument("--until", help="to (ISO 8601, UTC; default now)")
    audit.add_argument("--actor", help="one actor: user:<id>, admin:<id>, or a function")
    audit.add_argument("--action", help="one action: stored, moved, deleted, ...")
    audit.add_argument("--photo", help="one photo's trail, any owner's")
    stats = commands.add_parser("stats", help="sizes and costs per tier")
    stats.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="refresh every SECONDS until Ctrl-C (each refresh is one API request)",
    )
    commands.add_parser("buckets", help="every bucket's usage (admin)")
    sweep = commands.add_parser("sweep", help="run the lifecycle now (admin)")
    sweep.add_argument("--dry-run", action="store_true")
    reschedule = commands.add_parser(
        "reschedule",
        help="recompute every image's schedule after a change of the policy settings (admin)",
    )
    reschedule.add_argument("--dry-run", action="store_true")
    recommending = commands.add_parser(
        "recommend",
        help="the measured workload replayed under each configuration, cheapest first (admin)",
    )
    recommending.add_argument("--days", type=int, default=60, help="days of measurements")
    recommending.add_argument("--months", type=int, default=24, help="months to replay")
    reconcile = commands.add_parser("reconcile", help="buckets against the table (admin)")
    reconcile.add_argument("--fix", action="store_true")
    reconcile.add_argument("--adopt", action="store_true")
    reconcile.add_argument("--yes", action="store_true", help="with --fix: do not ask")
    importing = commands.add_parser(
        "import", help="import a bucket of existing photos; a dry run unless --run (admin)"
    )
    importing.add_argument("source", nargs="?", help="s3://bucket/prefix, r2://... or b2://...")
    importing.add_argument("--owner", help="every photo's owner (or of keys the pattern misses)")
    importing.add_argument(
        "--owner-pattern",
        help="a regular expression with an (?P<owner>...) group, searched in each key",
    )
    importing.add_argument(
        "--keep-originals",
        action="store_true",
        help="keep originals (stripped of metadata) where that shows the same picture",
    )
    importing.add_argument("--run", action="store_true", help="import (default: a dry run)")
    importing.add_argument("--resume", metavar="RUN_ID", help="go on with an import that stopped")
    cleanup = commands.add_parser(
        "cleanup", help="cleanup health, or replay its dead letters (admin)"
    )
    cleanup.add_argument("action", choices=["status", "redrive"])
    cleanup.add_argument("--max-messages", type=int, default=100)
    demo = commands.add_parser("demo", help="the local stack through a lifecycle, with the corpus")
    demo.add_argument("--corpus", default="../shared/corpus")
    demo.add_argument("--folders", nargs="+", default=["photos", "camera"])
    demo.add_argument("--serve", action="store_true", help="keep serving the API afterwards")
    demo.add_argument("--port", type=int, default=3000)
    simulated = commands.add_parser(
        "simulate",
        help="replay a workload through the store and price every strategy (no stack needed)",
    )
    simulate.add_arguments(simulated)
    # --json also after the subcommand, on every one; SUPPRESS keeps the top-level one
    # when absent there.
    for sub in commands.choices.values():
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    return top


# What each kind of failure prints after "shelflife: ", and the code it exits with.
FAILURES: tuple[tuple[type[Exception], int, str], ...] = (
    (UsageError, EXIT_USAGE, "{}"),
    (Unreachable, EXIT_USAGE, "{} (is `shelflife local` running? or pass --api-url)"),
    (ApiError, EXIT_REFUSED, "the API refused: {}"),
    (NoTerminal, EXIT_NO_TERMINAL, "{}"),
    (PortInUse, EXIT_PORT_IN_USE, "{}"),
)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = parser().parse_args(argv)
    try:
        return _run(args, out)
    except BrokenPipeError:
        # `shelflife photos | head`: the reader is gone, and so is the rest of the
        # output. Python would print a traceback at exit flushing stdout: point it at
        # /dev/null instead (Python's documented way), then say so once.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.stderr.write("shelflife: output closed before the end (a pipe's reader stopped)\n")
        return EXIT_PIPE_CLOSED
    except tuple(kind for kind, _, _ in FAILURES) as e:
        code, message = next((c, m) for kind, c, m in FAILURES if isinstance(e, kind))
        sys.stderr.write(f"shelflife: {message.format(e)}\n")
        return code


def _run(args: argparse.Namespace, out: TextIO) -> int:
    if args.command == "local":
        return cmd_local(args, out)
    if args.command == "demo":
        return cmd_demo(args, out)
    if args.command == "simulate":
        try:
            return simulate.run(args, out, as_json=args.json)
        except simulate.BadOption as e:
            raise UsageError(str(e)) from e
    return COMMANDS[args.command](client_for(args), args, out)


if __name__ == "__main__":
    raise SystemExit(main())
