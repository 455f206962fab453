"""lifecycle: daily at 03:00 UTC (EventBridge), or on demand from the API, move and
delete what the policy says is due; a sweep that runs short of time queues its own
continuation.

Events (events/lifecycle/):
- the schedule's "Scheduled Event" (scheduled.json);
- ``{"action": "run", "dry_run": bool, "request_id": str?, "max_seconds": int?}``, a
  run now (run-now.json); with ``max_seconds`` (the API's runs), the sweep stops after
  that long and queues its continuation, so the caller gets an answer in time;
- SQS messages from the continuation queue, each body
  ``{"action": "continue", "run_id", "started_at", "cursor"}`` (continue.json).

A scheduled event or a continuation delivered twice runs once (Powertools idempotency,
on the table; a run now is deduplicated by its ``request_id`` when it has one).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from shelflife import wiring
from shelflife.domain.budget import budgeted, parse_seconds
from shelflife.domain.errors import InvalidArgument
from shelflife.services.lifecycle import LifecycleReport
from shelflife.settings import Settings

settings = Settings.from_env()
service = wiring.lifecycle(settings)
continuation = wiring.lifecycle_continuation(settings)
logger = Logger()
metrics = Metrics()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.SQS)
# Idempotency records live in the table under their own partition and expire through
# its TTL; a run takes at most one invocation's 15 minutes, a day is ample.
persistence = DynamoDBPersistenceLayer(
    table_name=settings.table_name,
    key_attr="pk",
    sort_key_attr="sk",
    static_pk_value="IDEMPOTENCY#lifecycle",
    expiry_attr="expires_at",
)
idempotency = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=86400)
# Run counts published as metrics, by name.
METRICS = {
    "examined": "LifecycleExamined",
    "promoted": "ImagesPromoted",
    "archived": "ImagesArchived",
    "restored": "ImagesRestored",
    "deleted": "LifecycleImagesDeleted",
    "skipped": "LifecycleMovesSkipped",
    "failed": "LifecycleFailures",
    "lost": "ImagesLost",
}


def parse(event: Mapping[str, Any]) -> dict[str, Any]:
    """The request in one shape, with its idempotency key; a clear error for an event
    this function does not take."""
    if event.get("detail-type") == "Scheduled Event":
        return {"key": f"scheduled#{event.get('id')}", "dry_run": False}
    action = event.get("action", "run")
    if action == "run":
        dry_run = event.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise InvalidArgument(f"dry_run must be true or false, got {dry_run!r}")
        request_id = event.get("request_id") or uuid.uuid4().hex
        max_seconds = parse_seconds(event.get("max_seconds"))
        return {"key": f"run#{request_id}", "dry_run": dry_run, "max_seconds": max_seconds}
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
    raise InvalidArgument(f"unknown action {action!r}; the actions are 'run' and 'continue'")


def remaining(context: LambdaContext, max_seconds: int | None = None) -> Callable[[], int]:
    return budgeted(
        context.get_remaining_time_in_millis,
        max_seconds,
        margin_ms=settings.lifecycle_time_margin_seconds * 1000,
    )


def run_sweep(request: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "run_id" in request:
        report = service.resume(
            request["run_id"],
            datetime.fromisoformat(request["started_at"]),
            cursor=request["cursor"],
            remaining_ms=remaining(context),
        )
    else:
        report = service.run(
            dry_run=request["dry_run"],
            remaining_ms=remaining(context, request.get("max_seconds")),
        )
    logger.set_correlation_id(report.run_id)
    if not report.dry_run:
        publish(report)
    if not report.complete:
        if continuation is None:
            logger.warning("sweep stopped short; the next scheduled run continues it")
        else:
            continuation.request(service.continuation(report))
    logger.info(
        "lifecycle swept", extra={"counts": dict(report.added), "complete": report.complete}
    )
    return report.as_dict()


sweep: Callable[..., dict[str, Any]] = idempotent_function(
    data_keyword_argument="request", config=idempotency, persistence_store=persistence
)(run_sweep)


def publish(report: LifecycleReport) -> None:
    # This invocation's counts: a run continued over several invocations adds up.
    for name, metric in METRICS.items():
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=report.added[name])


def handle_continuation(record: SQSRecord, lambda_context: LambdaContext) -> None:
    sweep(request=parse(json.loads(record.body)), context=lambda_context)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    idempotency.register_lambda_context(context)
    if event.get("Records") and event["Records"][0].get("eventSource") == "aws:sqs":
        return process_partial_response(
            event=event, record_handler=handle_continuation, processor=processor, context=context
        )
    answer: dict[str, Any] = sweep(request=parse(event), context=context)
    return answer
