"""cleanup: the table's stream deletes the objects that image records let go of
(removed, soft-deleted, moved); on demand, replays the dead-letter queue or reports
its health.

Events (events/cleanup/):
- DynamoDB stream batches, which the template's filter narrows to image records whose
  change released an object (stream-soft-delete.json, stream-remove.json); answered
  with a partial batch response, so the stream retries only the records that failed;
- ``{"action": "redrive", "max_messages": int?}`` (redrive.json);
- ``{"action": "status"}`` (status.json);
- ``{"action": "reconcile", "fix": bool, "adopt": bool, "run_id": str?, "max_seconds":
  int?}`` (reconcile.json): a reconciliation (``shelflife.services.reconcile``), started or, with
  ``run_id``, continued; the API's admin route runs it here, beside the other place
  objects are deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shelflife import wiring
from shelflife.domain.budget import budgeted, parse_seconds
from shelflife.domain.errors import InvalidArgument
from shelflife.services.cleanup import Outcome
from shelflife.services.reconcile import TIME_MARGIN_MS, ReconcileService
from shelflife.settings import Settings

settings = Settings.from_env()
service = wiring.cleanup(settings)
# The same table and stores as cleanup's: the reconciler is the other deleter.
reconciler = ReconcileService(settings, service.repository, service.backends)
logger = Logger()
metrics = Metrics()
tracer = Tracer()
# Every record answers for itself, even when all of a batch fail: the stream retries
# from the first failed one, and bisecting is left for invocations that crash.
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)
# One metric per outcome; the alarms in template.yaml watch CleanupFailed and
# CleanupRetried.
METRICS = {
    Outcome.COMPLETED: "CleanupCompleted",
    Outcome.SKIPPED: "CleanupSkipped",
    Outcome.IGNORED: "CleanupIgnored",
    Outcome.FAILED: "CleanupFailed",
}


def handle_record(record: DynamoDBRecord) -> None:
    try:
        change = service.change(record.raw_event)
    except InvalidArgument as e:
        # Not a stream record of this table: nothing to delete, and retrying it would
        # hold up the shard. The reconciler finds any object it might have concerned.
        logger.error("unreadable stream record", extra={"error": str(e)})
        metrics.add_metric(name="CleanupUnreadable", unit=MetricUnit.Count, value=1)
        return
    logger.append_keys(image_id=change.image_id, event_id=change.event_id)
    try:
        result = service.process(change)
    except Exception:
        metrics.add_metric(name="CleanupRetried", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name=METRICS[result.outcome], unit=MetricUnit.Count, value=1)
    if result.deleted:
        metrics.add_metric(
            name="CleanupObjectsDeleted", unit=MetricUnit.Count, value=len(result.deleted)
        )
    logger.info(
        "cleanup %s",
        result.outcome.value,
        extra={
            "deleted": [place.model_dump(mode="json") for place in result.deleted],
            "kept": [place.model_dump(mode="json") for place in result.kept],
            "error": result.task.error if result.task else None,
        },
    )


def reconcile(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    options = {name: event.get(name, False) for name in ("fix", "adopt")}
    for name, value in options.items():
        if not isinstance(value, bool):
            raise InvalidArgument(f"{name} must be true or false, got {value!r}")
    run_id = event.get("run_id")
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise InvalidArgument(f"run_id must be a run's id, got {run_id!r}")
    clock = budgeted(
        context.get_remaining_time_in_millis,
        parse_seconds(event.get("max_seconds")),
        margin_ms=TIME_MARGIN_MS,
    )
    if run_id is not None:
        report = reconciler.resume(run_id, remaining_ms=clock)
    else:
        report = reconciler.run(fix=options["fix"], adopt=options["adopt"], remaining_ms=clock)
    logger.set_correlation_id(report.run_id)
    counts = report.as_dict()["counts"]
    logger.info("reconciled", extra={"complete": report.complete, "counts": counts})
    return report.as_dict()


def redrive(event: Mapping[str, Any]) -> dict[str, Any]:
    max_messages = event.get("max_messages", 100)
    if not isinstance(max_messages, int) or isinstance(max_messages, bool):
        raise InvalidArgument(f"max_messages must be a whole number, got {max_messages!r}")
    report = service.redrive(max_messages=max_messages)
    metrics.add_metric(name="CleanupRedriven", unit=MetricUnit.Count, value=report.completed)
    metrics.add_metric(name="CleanupRedriveFailed", unit=MetricUnit.Count, value=report.failed)
    logger.info("dead letters redriven", extra=report.as_dict())
    return report.as_dict()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=handle_record, processor=processor, context=context
        )
    action = event.get("action")
    if action == "redrive":
        return redrive(event)
    if action == "status":
        return service.health().as_dict()
    if action == "reconcile":
        return reconcile(event, context)
    raise InvalidArgument(
        f"unknown event (action {action!r}); the cleanup function takes stream batches, "
        "'redrive', 'status' and 'reconcile'"
    )
