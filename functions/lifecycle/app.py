"""lifecycle: daily (EventBridge) or on demand from the API, move and delete what the
policy says is due; a sweep short of time queues its continuation. Events: events/
lifecycle/, read by ``shelflife.domain.requests``; one delivered twice runs once
(Powertools idempotency, on the table)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shelflife import wiring
from shelflife.adapters.metrics import publish
from shelflife.domain.requests import lifecycle_request
from shelflife.domain.settings import Settings

settings = Settings.from_env()
service = wiring.lifecycle(settings)
idempotency, once = wiring.lifecycle_idempotency(settings)
logger, metrics, tracer = Logger(), Metrics(), Tracer()
processor = BatchProcessor(event_type=EventType.SQS)


@once
def sweep(request: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = service.sweep(request, context.get_remaining_time_in_millis)
    logger.set_correlation_id(report.run_id)
    publish(metrics, report.measurements())
    extra = {"counts": dict(report.added), "complete": report.complete}
    logger.info("lifecycle swept", extra=extra)
    return report.as_dict()


def handle_continuation(record: SQSRecord, lambda_context: LambdaContext) -> None:
    sweep(request=lifecycle_request(json.loads(record.body)), context=lambda_context)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    idempotency.register_lambda_context(context)
    if event.get("Records") and event["Records"][0].get("eventSource") == "aws:sqs":
        return process_partial_response(
            event=event, record_handler=handle_continuation, processor=processor, context=context
        )
    request = lifecycle_request(event)
    if "serve" in request:  # idempotent move by move: no idempotency record needed
        return service.serve_report(request["serve"])
    answer: dict[str, Any] = sweep(request=request, context=context)
    return answer
