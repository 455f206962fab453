"""cleanup: the table's stream deletes the objects image records let go of (removed,
soft-deleted, moved); on demand (events/cleanup/, read by ``shelflife.domain.requests``)
it replays its dead letters, reports its health or reconciles (the other deleter)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities import batch
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shelflife import wiring
from shelflife.adapters.metrics import publish
from shelflife.domain.measurements import Measurement
from shelflife.domain.requests import cleanup_request
from shelflife.domain.settings import Settings

settings = Settings.from_env()
service = wiring.cleanup(settings)
reconciler = wiring.reconcile(settings, repository=service.repository, backends=service.backends)
logger, metrics, tracer = Logger(), Metrics(), Tracer()
# Every record answers for itself, even when all of a batch fail: the stream retries
# from the first failed one, and bisecting is left for invocations that crash.
STREAM = batch.EventType.DynamoDBStreams
processor = batch.BatchProcessor(STREAM, raise_on_entire_batch_failure=False)


def handle_record(record: DynamoDBRecord) -> None:
    try:
        result = service.process_record(record.raw_event)
    except Exception:
        publish(metrics, [Measurement("CleanupRetried", 1)])
        raise
    publish(metrics, result.measurements())
    logger.info("cleanup %s", result.outcome.value, extra=result.log_fields())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    if "Records" in event:
        return batch.process_partial_response(event, handle_record, processor, context=context)
    request = cleanup_request(event)
    if request["action"] == "status":
        return service.health().as_dict()
    if request["action"] == "redrive":
        redriven = service.redrive(max_messages=request["max_messages"])
        publish(metrics, redriven.measurements())
        report = redriven.as_dict()
    else:
        report = reconciler.answer(request, context.get_remaining_time_in_millis).as_dict()
        logger.set_correlation_id(report["run_id"])
    # A redrive's report is its counts; a reconciliation's lists drift besides.
    logger.info("%s done", request["action"], extra={"counts": report.get("counts", report)})
    return report
