"""import: a bucket of existing photos (S3, R2 or B2; any prefix, keys of any shape)
brought into the store, on demand from the API (``POST /imports``, ``shelflife import``)
or invoked directly for a long run.

Events (events/imports/, read by ``shelflife.domain.imports.import_request``): a new
import ``{"source": {"backend", "bucket", "prefix"?}, "owner"? , "owner_pattern"?,
"compress"?, "dry_run"? (default true), "max_seconds"?}`` (dry-run.json, run.json), or
the continuation of one ``{"run_id", "max_seconds"?}`` (continue.json). Each answers
the run's report so far; ``complete: false`` means: ask again with its run_id.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shelflife import wiring
from shelflife.domain.imports import import_request
from shelflife.domain.settings import Settings

settings = Settings.from_env()
service = wiring.imports(settings)
logger = Logger()
metrics = Metrics()
tracer = Tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = import_request(event)
    report = service.answer(request, context.get_remaining_time_in_millis)
    logger.set_correlation_id(report.run_id)
    metrics.add_metric("ImagesImported", unit="Count", value=report.counts["imported"])
    logger.info(
        "import",
        extra={"run_id": report.run_id, "complete": report.complete, "counts": report.counts},
    )
    return report.as_dict()
