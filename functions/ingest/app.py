"""ingest: an object created under ``incoming/`` in the upload bucket becomes an image.

S3 invokes this function directly (the stack's wiring), or the same notifications come
through SQS (the local stack, or a queue you put in front); both are handled. Bad input
is quarantined and reported as success; only what a retry may cure raises, so Lambda
retries it and then hands it to the dead-letter queue.
"""

from __future__ import annotations

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
from shelflife.domain.settings import Settings
from shelflife.domain.uploads import Upload, uploads_from_s3_event, uploads_from_sqs_body
from shelflife.services.ingest import IngestResult

settings = Settings.from_env()
service = wiring.ingest(settings)
logger = Logger()
metrics = Metrics()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def ingest(upload: Upload) -> IngestResult:
    logger.set_correlation_id(upload.key)
    result = service.ingest(upload)
    publish(metrics, result.measurements())
    logger.info("upload %s", result.outcome.value, extra=result.log_fields())
    return result


def handle_message(record: SQSRecord) -> None:
    for upload in uploads_from_sqs_body(record.body):
        ingest(upload)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, object]:
    if event.get("Records") and event["Records"][0].get("eventSource") == "aws:sqs":
        return process_partial_response(
            event=event, record_handler=handle_message, processor=processor, context=context
        )
    results = [ingest(upload) for upload in uploads_from_s3_event(event)]
    return {"results": [{"key": r.upload.key, "outcome": r.outcome.value} for r in results]}
