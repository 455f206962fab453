"""audit: the table's stream turned into the audit trail (``shelflife.domain.audit``).

Each stream record of an image write that stamped a change becomes one entry in the
audit table, keyed by the image and the write: a record delivered again writes the
same item. A record that fails is retried by the
stream (a partial batch response); past the mapping's retries, the batch's place in
the stream goes to the audit dead-letter queue.
"""

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
from shelflife.domain.settings import Settings

settings = Settings.from_env()
service = wiring.audit(settings)
logger, metrics, tracer = Logger(), Metrics(), Tracer()
STREAM = batch.EventType.DynamoDBStreams
processor = batch.BatchProcessor(STREAM, raise_on_entire_batch_failure=False)


def handle_record(record: DynamoDBRecord) -> None:
    assert service is not None, "SHELFLIFE_AUDIT_TABLE_NAME is not set"
    entry = service.process_record(record.raw_event)
    publish(metrics, [Measurement("AuditEntries" if entry else "AuditSkipped", 1)])
    # The entry is the record; a log line each would cost as much again (DEBUG).
    if entry is not None:
        logger.debug("audit %s", entry.action.value, extra={"seq": entry.seq})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    answer = batch.process_partial_response(event, handle_record, processor, context=context)
    failed = len(answer.get("batchItemFailures", []))
    logger.info("audit batch", extra={"records": len(event.get("Records", [])), "failed": failed})
    return answer
