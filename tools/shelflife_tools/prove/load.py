"""The load run (issue 9, item 5): ``python -m shelflife_tools.prove.load``, part of
``make prove``.

On the local stack: 8 clients (8 users) upload 2,000 distinct images between them as a
browser does (``POST /uploads``, then the form post to the upload bucket), and each
deletes every tenth of its photos once it is placed. Alongside, each time ingest has
taken in 25 more uploads, an admin moves the stack's clock on by a day and asks for a
lifecycle sweep and a capacity check, so promotions to HOT, the stream's cleanup and the
schedules run while uploads arrive. (Paced by ingest, not by seconds or by what the
clients sent: every run does the same work, whatever the machine's speed, and sweeps
find what ingest placed days before.)

Then, once everything is delivered and past the reconciler's grace period, a reconcile
fix and a dry run, and the checks: every upload placed exactly once (one record, one
object, or none for the deleted ones), every bucket's counters equal to its live
records, the day's counts equal to what the clients did, nothing for the reconciler to
find, no request answered 5xx. Printed: throughput and latencies, the slowest request.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from shelflife.domain import clock
from shelflife.services.reconcile import DriftKind
from shelflife_tools.client import ApiClient, ApiError
from shelflife_tools.local.stack import LocalStack

CLIENTS = 8
UPLOADS = 2_000
DELETE_EVERY = 10
# A delete answered so is tried again: not ingested yet (404), still being processed (409).
NOT_YET = (404, 409)
# How long a client waits before asking again, doubling up to the last: a client that
# asked after every upload for every photo not yet placed sent 60 deletes a photo, and
# one that asked every 8 s still 30 (ingest runs minutes behind the clients locally).
RETRY_AFTER = (0.5, 30.0)
# How long a client keeps asking once its uploads are done (ingest may be behind).
WAIT_FOR_PLACEMENT = 600.0
# The admin's pace: a day on the clock, a sweep and a capacity check per this many uploads
# ingested; it gives up waiting when ingest has taken nothing in for this long.
SWEEP_EVERY = 25
HOURS_PER_SWEEP = 24
STALLED_AFTER = 120.0


def image(client: int, number: int) -> bytes:
    """A small JPEG no other upload shares."""
    rng = random.Random(client * 1_000_003 + number)
    pixels = Image.frombytes("RGB", (32, 24), rng.randbytes(32 * 24 * 3))
    buffer = io.BytesIO()
    pixels.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@dataclass
class Timings:
    """Every request's latency, by route; failures by route and status."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    slowest: tuple[float, str] = (0.0, "")
    failures: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, route: str, seconds: float) -> None:
        with self._lock:
            self.seconds[route].append(seconds)
            self.slowest = max(self.slowest, (seconds, route))

    def failed(self, route: str, status: int | str) -> None:
        with self._lock:
            self.failures[f"{route} {status}"] += 1

    def timed(
        self, route: str, call: Any, *args: Any, retry_on: tuple[int, ...] = (), **kwargs: Any
    ) -> Any:
        """``call``, timed; an answer >= 400 counts as a failure unless it is one of
        ``retry_on`` (the client tries again later)."""
        started = time.monotonic()
        try:
            return call(*args, **kwargs)
        except ApiError as e:
            if e.status not in retry_on:
                self.failed(route, e.status)
            raise
        finally:
            self.add(route, time.monotonic() - started)


@dataclass
class ClientRun:
    user: str
    uploaded: dict[str, bytes] = field(default_factory=dict)  # photo id -> bytes
    deleted: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


@dataclass
class PendingDelete:
    """A photo its owner wants gone, asked for again with a growing pause."""

    photo_id: str
    next_try: float = 0.0
    pause: float = RETRY_AFTER[0]

    def later(self, now: float) -> None:
        self.next_try = now + self.pause
        self.pause = min(self.pause * 2, RETRY_AFTER[1])


def run_client(stack: LocalStack, index: int, count: int, timings: Timings) -> ClientRun:
    user = f"load-{index}"
    api = ApiClient(stack.api_url, stack.token(user), timeout=120)
    run = ClientRun(user)
    pending: list[PendingDelete] = []
    for number in range(count):
        data = image(index, number)
        body = {"filename": f"{number}.jpg", "content_type": "image/jpeg", "size": len(data)}
        try:
            ticket = timings.timed("POST /uploads", api.post, "/uploads", body)
            started = time.monotonic()
            posted = api.session.post(
                ticket["url"],
                data=ticket["fields"],
                files={"file": (f"{number}.jpg", data, "image/jpeg")},
                timeout=120,
            )
            timings.add("POST upload bucket", time.monotonic() - started)
            if posted.status_code >= 300:
                timings.failed("POST upload bucket", posted.status_code)
                run.errors.append(f"upload {number}: {posted.status_code} {posted.text[:200]}")
                continue
        except (ApiError, requests.RequestException) as e:
            run.errors.append(f"upload {number}: {e}")
            continue
        photo_id = _photo_id(user, data)
        run.uploaded[photo_id] = data
        if number % DELETE_EVERY == DELETE_EVERY - 1:
            pending.append(PendingDelete(photo_id, next_try=time.monotonic() + RETRY_AFTER[0]))
        pending = _deletes_due(api, pending, run, timings)
    deadline = time.monotonic() + WAIT_FOR_PLACEMENT
    while pending and time.monotonic() < deadline:
        time.sleep(max(0.0, min(p.next_try for p in pending) - time.monotonic()))
        pending = _deletes_due(api, pending, run, timings)
    run.errors += [f"{p.photo_id}: never placed, so never deleted" for p in pending]
    return run


def _deletes_due(
    api: ApiClient, pending: list[PendingDelete], run: ClientRun, timings: Timings
) -> list[PendingDelete]:
    """Asks for the deletes whose time has come; those still to ask for again."""
    waiting = []
    for delete in pending:
        now = time.monotonic()
        if delete.next_try > now:
            waiting.append(delete)
        elif not _try_delete(api, delete.photo_id, run, timings):
            delete.later(now)
            waiting.append(delete)
    return waiting


def _photo_id(user: str, data: bytes) -> str:
    from shelflife.services.ingest import image_id

    return image_id(user, hashlib.sha256(data).hexdigest())


def _try_delete(api: ApiClient, photo_id: str, run: ClientRun, timings: Timings) -> bool:
    """Delete the photo if ingest has placed it; False to try again later."""
    try:
        timings.timed(
            "DELETE /photos/{id}",
            api.request,
            "DELETE",
            f"/photos/{photo_id}",
            retry_on=NOT_YET,
        )
    except ApiError as e:
        if e.status in NOT_YET:
            return False
        run.errors.append(f"delete {photo_id}: {e}")
        return True
    run.deleted.add(photo_id)
    return True


def run_admin(stack: LocalStack, uploads: int, timings: Timings) -> Counter[str]:
    api = ApiClient(stack.api_url, stack.token("load-admin", admin=True), timeout=300)
    ingest = stack.functions["IngestFunction"]
    done: Counter[str] = Counter()
    next_sweep = SWEEP_EVERY
    seen, progressed = 0, time.monotonic()
    while next_sweep <= uploads:
        if ingest.invocations < next_sweep:
            if ingest.invocations != seen:
                seen, progressed = ingest.invocations, time.monotonic()
            elif time.monotonic() - progressed > STALLED_AFTER:
                done["gave up waiting for ingest"] += 1
                break
            time.sleep(0.1)
            continue
        next_sweep += SWEEP_EVERY
        clock.set_clock(offset=timedelta(hours=HOURS_PER_SWEEP))
        done["hours_advanced"] += HOURS_PER_SWEEP
        for route, path in (
            ("POST /lifecycle/run", "/lifecycle/run"),
            ("POST /capacity/run", "/capacity/run"),
        ):
            try:
                timings.timed(route, api.post, path, {"dry_run": False})
                done[route] += 1
            except ApiError as e:
                done[f"{route} failed {e.status}"] += 1
        timings.timed("GET /stats", api.get, "/stats")
    return done


# ---- the checks ---------------------------------------------------------------------


def check(stack: LocalStack, runs: list[ClientRun], admin: ApiClient) -> list[str]:
    from shelflife.adapters.backends import ProviderBackends
    from shelflife.adapters.table.dynamo import DynamoRepository
    from shelflife.domain.records import ImageState
    from shelflife.domain.settings import Settings

    settings = Settings.from_env()
    repository = DynamoRepository.from_settings(settings)
    backends = ProviderBackends(settings)
    problems: list[str] = []

    live: dict[tuple[str, str], list[Any]] = defaultdict(list)  # (tier, bucket) -> images
    objects_by_id: Counter[str] = Counter()
    for bucket in repository.list_buckets():
        store = backends.for_tier(bucket.tier)
        for info in store.iter_objects(bucket.name, prefix="images/"):
            objects_by_id[info.key.split("/")[1]] += 1
    for run in runs:
        records = _all_images(repository, run.user)
        for photo_id in run.uploaded:
            image = records.pop(photo_id, None)
            expected = ImageState.DELETED if photo_id in run.deleted else ImageState.ACTIVE
            if image is None:
                problems.append(f"{run.user}: {photo_id} uploaded and never recorded")
                continue
            if image.state is not expected:
                problems.append(f"{photo_id}: {image.state}, expected {expected}")
            wanted = 1 if expected is ImageState.ACTIVE else 0
            if objects_by_id[photo_id] != wanted:
                problems.append(f"{photo_id}: {objects_by_id[photo_id]} objects, expected {wanted}")
            if image.live and image.location is not None:
                live[(image.location.tier.value, image.location.bucket)].append(image)
        if records:
            problems.append(f"{run.user}: records nobody uploaded: {sorted(records)[:5]}")
        problems += [f"{run.user}: {error}" for error in run.errors]
    for bucket in repository.list_buckets():
        mine = live.get((bucket.tier.value, bucket.name), [])
        expected_counters = (sum(i.stored_size for i in mine), len(mine))
        if (bucket.used_bytes, bucket.object_count) != expected_counters:
            problems.append(
                f"{bucket.name}: counters {bucket.used_bytes} B / {bucket.object_count}, "
                f"records {expected_counters[0]} B / {expected_counters[1]}"
            )
    totals: Counter[str] = Counter()
    for day in repository.daily_counts(clock.now().date() - timedelta(days=400)):
        totals.update(day.counts)
    uploaded = sum(len(run.uploaded) for run in runs)
    deleted = sum(len(run.deleted) for run in runs)
    if totals["uploaded"] != uploaded:
        problems.append(f"daily counts say {totals['uploaded']} uploaded, {uploaded} were")
    if totals["deleted_by_owner"] != deleted:
        problems.append(f"daily counts say {totals['deleted_by_owner']} deleted, {deleted} were")
    final = reconcile(admin, fix=False)
    drift = {k: v for k, v in final["counts"].items() if k in _DRIFT and v}
    if drift:
        problems.append(f"the reconciler still finds drift after its fix: {drift}")
    return problems


_DRIFT = {kind.value for kind in DriftKind}


def reconcile(admin: ApiClient, *, fix: bool) -> dict[str, Any]:
    """A whole reconciliation through the API, continued until it is complete (each
    call has the API's time budget)."""
    answer: dict[str, Any] = admin.post("/reconcile", {"fix": fix})
    while not answer["complete"]:
        answer = admin.post("/reconcile", {"fix": fix, "run_id": answer["run_id"]})
    return answer


def _all_images(repository: Any, owner: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    cursor = None
    while True:
        page = repository.images_by_owner(owner, limit=100, cursor=cursor)
        found.update({image.id: image for image in page.items})
        cursor = page.cursor
        if cursor is None:
            return found


# ---- the run ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=UPLOADS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    args = parser.parse_args(argv)
    if args.uploads < args.clients or args.clients < 1:
        parser.error("--uploads must be at least --clients, and --clients at least 1")
    timings = Timings()
    with (
        tempfile.TemporaryDirectory() as folder,
        LocalStack(api_port=0, folder=Path(folder)) as stack,
    ):
        stack.serve(interval=0.05)
        admin = ApiClient(stack.api_url, stack.token("load-admin", admin=True), timeout=300)
        admin_done: list[Counter[str]] = []
        admin_thread = threading.Thread(
            target=lambda: admin_done.append(run_admin(stack, args.uploads, timings)),
            daemon=True,
        )
        runs: list[ClientRun] = [ClientRun(f"load-{i}") for i in range(args.clients)]

        def client(index: int) -> None:
            share = args.uploads // args.clients + (index < args.uploads % args.clients)
            runs[index] = run_client(stack, index, share, timings)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        started = time.monotonic()
        admin_thread.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        uploaded_in = time.monotonic() - started
        admin_thread.join()
        stack.drain(timeout=600)
        placed_in = time.monotonic() - started
        # Past the grace period, the operator's reconcile fix; cleanup catches up.
        clock.set_clock(offset=timedelta(hours=49))
        stack.drain(timeout=600)
        fix_started = time.monotonic()
        fixed = reconcile(admin, fix=True)
        stack.drain(timeout=600)
        checks_started = time.monotonic()
        problems = check(stack, runs, admin)
        after = (
            f"afterwards: {fix_started - started - placed_in:.0f} s the last sweep's work, "
            f"{checks_started - fix_started:.0f} s the reconcile fix, "
            f"{time.monotonic() - checks_started:.0f} s the checks"
        )
        uploads = sum(len(run.uploaded) for run in runs)
        deleted = sum(len(run.deleted) for run in runs)
        ingests = stack.functions["IngestFunction"].invocations
    print(report(timings, uploads, deleted, uploaded_in, placed_in, ingests, admin_done, fixed))
    print(after)
    # After the stack stopped: its moto server is a finished child process by now.
    print(
        f"peak RSS: {_peak_mb(resource.RUSAGE_SELF):.0f} MB the stack's process, "
        f"{_peak_mb(resource.RUSAGE_CHILDREN):.0f} MB moto's server"
    )
    five_xx = {k: v for k, v in timings.failures.items() if v and k.split()[-1].startswith("5")}
    if five_xx:
        problems.append(f"5xx answers: {five_xx}")
    for problem in problems[:50]:
        print(f"PROBLEM: {problem}")
    print(f"{len(problems)} problems")
    return 1 if problems else 0


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def report(
    timings: Timings,
    uploads: int,
    deleted: int,
    uploaded_in: float,
    placed_in: float,
    ingests: int,
    admin_done: list[Counter[str]],
    fixed: dict[str, Any],
) -> str:
    lines = [
        f"{uploads} uploads, {deleted} deleted by their owners; clients done in "
        f"{uploaded_in:.0f} s, every upload placed {placed_in:.0f} s after the start: "
        f"{uploads / placed_in:.1f} uploads/s placed ({ingests} ingest invocations)",
        f"admin alongside: {dict(admin_done[0]) if admin_done else {}}",
        f"reconcile fix afterwards: {_counts(fixed)}",
        "latency by route: count, median, p95, max (seconds)",
    ]
    for route, values in sorted(timings.seconds.items()):
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        lines.append(
            f"  {route:<22} {len(values):>6} {statistics.median(values):>7.3f} "
            f"{p95:>7.3f} {ordered[-1]:>7.3f}"
        )
    lines.append(f"slowest request: {timings.slowest[1]}, {timings.slowest[0]:.2f} s")
    failures = {k: v for k, v in timings.failures.items() if v}
    lines.append(f"answers >= 400: {failures or 'none'}")
    return "\n".join(lines)


def _counts(report: dict[str, Any]) -> dict[str, int]:
    return {
        k: v
        for k, v in report.get("counts", {}).items()
        if v and k in {*_DRIFT, "deleted", "counters_corrected"}
    }


if __name__ == "__main__":
    sys.exit(main())
