"""What the scheduled and on-demand functions take (lifecycle, capacity, cleanup), read
from an event into one shape with a clear error for anything else: the contract
between the schedules, the API's admin runs (``shelflife.services.operations``) and the
functions that do the work. Pure: the handlers pass what they read to their service.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shelflife.domain.budget import parse_seconds
from shelflife.domain.errors import InvalidArgument
from shelflife.domain.settings import TierName

# A publish names at most 100 photos (the API's PublishRequest).
MAX_SERVE_IDS = 100


def _flag(event: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = event.get(name, default)
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name} must be true or false, got {value!r}")
    return value


def lifecycle_request(event: Mapping[str, Any]) -> dict[str, Any]:
    """A sweep (scheduled, or run now) or a continuation, with its idempotency key.
    A dict: Powertools' idempotency hashes it."""
    if event.get("detail-type") == "Scheduled Event":
        return {"key": f"scheduled#{event.get('id')}", "dry_run": False}
    action = event.get("action", "run")
    if action in ("run", "reschedule"):
        dry_run = _flag(event, "dry_run")
        request_id = event.get("request_id") or uuid.uuid4().hex
        max_seconds = parse_seconds(event.get("max_seconds"))
        request = {"key": f"{action}#{request_id}", "dry_run": dry_run, "max_seconds": max_seconds}
        if action == "reschedule":
            # Every scheduled record's schedule recomputed after a policy change.
            request["reschedule"] = True
        return request
    if action == "serve":
        # Photos the API just published, to move to the serving buckets now. Each
        # move is idempotent by itself (claim, copy, verify, flip), so no key.
        ids = event.get("image_ids")
        if (
            not isinstance(ids, list)
            or not 1 <= len(ids) <= MAX_SERVE_IDS
            or not all(isinstance(i, str) and 0 < len(i) <= 128 for i in ids)
        ):
            raise InvalidArgument(
                f"serve needs image_ids: a list of 1 to {MAX_SERVE_IDS} image ids, got {ids!r}"
            )
        return {"serve": ids}
    if action == "continue":
        missing = [name for name in ("run_id", "started_at", "cursor") if not event.get(name)]
        if missing:
            raise InvalidArgument(f"a continuation needs {', '.join(missing)}")
        try:
            datetime.fromisoformat(event["started_at"])
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"started_at is not an ISO time: {event['started_at']!r}") from e
        return {
            "key": f"continue#{event['run_id']}#{event['cursor']}",
            "run_id": event["run_id"],
            "started_at": event["started_at"],
            "cursor": event["cursor"],
        }
    raise InvalidArgument(
        f"unknown action {action!r}; the actions are 'run', 'reschedule', 'serve' and 'continue'"
    )


def capacity_request(event: Mapping[str, Any]) -> dict[str, Any]:
    """A check (scheduled or run now) or an age-based cleanup of a tier or bucket."""
    if event.get("detail-type") == "Scheduled Event":
        return {"action": "check", "dry_run": False}
    action = event.get("action", "check")
    if action not in ("check", "cleanup"):
        raise InvalidArgument(f"unknown action {action!r}; the actions are 'check' and 'cleanup'")
    # A cleanup asked for by hand is a dry run unless it says otherwise.
    request: dict[str, Any] = {
        "action": action,
        "dry_run": _flag(event, "dry_run", action == "cleanup"),
    }
    if action == "cleanup":
        try:
            request["tier"] = TierName(str(event.get("tier")))
        except ValueError:
            raise InvalidArgument(
                f"tier must be one of {', '.join(TierName)}, got {event.get('tier')!r}"
            ) from None
        bucket = event.get("bucket")
        if bucket is not None and not isinstance(bucket, str):
            raise InvalidArgument(f"bucket must be a bucket name, got {bucket!r}")
        request["bucket"] = bucket
        threshold = event.get("threshold_percent")
        if threshold is not None and (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not 0 < threshold <= 100
        ):
            raise InvalidArgument(f"threshold_percent must be in (0, 100], got {threshold!r}")
        request["threshold_percent"] = threshold
        # Who asked (the API's admin): the audit trail's actor of its deletions.
        asked = event.get("requested_by")
        if asked is not None and (not isinstance(asked, str) or not 0 < len(asked) <= 200):
            raise InvalidArgument(f"requested_by must be who asked, got {asked!r}")
        request["requested_by"] = asked
    return request


def cleanup_request(event: Mapping[str, Any]) -> dict[str, Any]:
    """Beside its stream batches, the cleanup function takes ``redrive``, ``status`` and
    ``reconcile`` (started, or continued with its ``run_id``)."""
    action = event.get("action")
    if action == "redrive":
        max_messages = event.get("max_messages", 100)
        if not isinstance(max_messages, int) or isinstance(max_messages, bool):
            raise InvalidArgument(f"max_messages must be a whole number, got {max_messages!r}")
        return {"action": action, "max_messages": max_messages}
    if action == "status":
        return {"action": action}
    if action == "reconcile":
        options = {name: _flag(event, name) for name in ("fix", "adopt")}
        run_id = event.get("run_id")
        if run_id is not None and (not isinstance(run_id, str) or not run_id):
            raise InvalidArgument(f"run_id must be a run's id, got {run_id!r}")
        max_seconds = parse_seconds(event.get("max_seconds"))
        return {"action": action, **options, "run_id": run_id, "max_seconds": max_seconds}
    raise InvalidArgument(
        f"unknown event (action {action!r}); the cleanup function takes stream batches, "
        "'redrive', 'status' and 'reconcile'"
    )
