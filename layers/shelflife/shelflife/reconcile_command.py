"""``python -m shelflife.reconcile_command``: the reconciler (``shelflife.services.reconcile``)
from a shell, with the stack's ``SHELFLIFE_*`` variables set: a report with a progress
bar, a fix (asked first), a resumed run; its exit code says whether drift remains."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from shelflife import wiring
from shelflife.domain.errors import ShelflifeError
from shelflife.domain.settings import Settings
from shelflife.services.reconcile import DriftKind, Progress, ReconcileReport, ReconcileService


def _bar(progress: Progress, out: TextIO) -> None:
    width = 30
    filled = round(progress.fraction * width)
    out.write(
        f"\r[{'#' * filled}{'-' * (width - filled)}] {progress.fraction:4.0%} "
        f"bucket {progress.index}/{progress.buckets} {progress.bucket} ({progress.phase}) "
        f"{progress.objects:,} objects"
    )
    out.flush()


def _print_report(report: ReconcileReport, out: TextIO) -> None:
    c = report.counts
    mode = "fix" if report.options.fix else "dry run"
    out.write(f"reconcile {report.run_id} ({mode}){'' if report.complete else ', stopped'}\n")
    out.write(f"{c['objects']:,} objects ({c['bytes']:,} bytes), {c['records']:,} live records\n")
    out.write(f"\n{'bucket':48} {'objects':>9} {'bytes':>14} {'records':>9}\n")
    for name, stats in sorted(report.buckets.items()):
        out.write(
            f"{name:48} {stats.get('objects', 0):>9,} {stats.get('bytes', 0):>14,} "
            f"{stats.get('records', 0):>9,}\n"
        )
    out.write(f"\n{'tier/type':48} {'objects':>9} {'bytes':>14}\n")
    for name, stats in sorted(report.types.items()):
        out.write(f"{name:48} {stats['objects']:>9,} {stats['bytes']:>14,}\n")
    out.write("\ndrift:\n")
    for kind in DriftKind:
        out.write(f"  {kind.value:18} {c[kind.value]:>7,}\n")
        for item in report.drift.get(kind.value, [])[:10]:
            where = "/".join(str(item[k]) for k in ("tier", "bucket", "key") if k in item)
            action = f" -> {item['action']}" if "action" in item else ""
            out.write(f"      {where}: {item.get('detail', '')}{action}\n")
    if report.options.fix:
        out.write(
            f"\nfixed: {c['deleted']} deleted, {c['adopted']} adopted, "
            f"{c['marked_lost']} marked lost, {c['counters_corrected']} counters corrected\n"
        )
    out.write("\nrecommendations:\n")
    for line in report.recommendations():
        out.write(f"  - {line}\n")


def main(argv: Sequence[str] | None = None, *, service: ReconcileService | None = None) -> int:
    """Exit 0 when the buckets and the table agree (or the fix left nothing to do), 1
    when drift remains, 2 on a usage or configuration error."""
    parser = argparse.ArgumentParser(
        prog="python -m shelflife.reconcile_command",
        description="Compare every bucket of every tier with the table; report, or fix.",
    )
    parser.add_argument("--fix", action="store_true", help="repair what the report finds")
    parser.add_argument("--adopt", action="store_true", help="with --fix: adopt valid orphans")
    parser.add_argument("--yes", action="store_true", help="with --fix: do not ask first")
    parser.add_argument("--grace-hours", type=int, help="orphans younger than this are kept")
    parser.add_argument("--max-deletes", type=int, help="at most this many deletions a run")
    parser.add_argument("--no-checksums", action="store_true", help="compare sizes only")
    parser.add_argument("--resume", metavar="RUN_ID", help="go on with a run that stopped")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.adopt and not args.fix:
        parser.error("--adopt needs --fix")
    if args.fix and not args.yes and not args.resume:
        try:
            answer = input("--fix deletes orphaned objects and marks records lost. Go on? [y/N] ")
        except EOFError:  # no terminal (a cron job, CI): no one approved the change
            print("--fix asks first and nothing answered: pass --yes", file=sys.stderr)
            return 4
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing changed", file=sys.stderr)
            return 2
    try:
        service = service or wiring.reconcile(Settings.from_env())

        def progress(update: Progress) -> None:
            _bar(update, sys.stderr)

        if args.resume:
            report = service.resume(args.resume, progress=progress)
        else:
            report = service.run(
                fix=args.fix,
                adopt=args.adopt,
                grace_hours=args.grace_hours,
                max_deletes=args.max_deletes,
                checksums=not args.no_checksums,
                progress=progress,
            )
    except ShelflifeError as e:
        print(f"\nreconcile: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopped; resume with --resume and the run id above", file=sys.stderr)
        return 2
    sys.stderr.write("\n")
    if args.json:
        json.dump(report.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_report(report, sys.stdout)
    remaining = report.drift_found - report.counts["deleted"] - report.counts["adopted"]
    remaining -= report.counts["marked_lost"] + report.counts["counters_corrected"]
    return 0 if remaining == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
