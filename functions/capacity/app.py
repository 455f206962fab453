"""capacity: on a schedule (EventBridge, hourly by default), or on demand from the API,
check every bucket's usage: clean up past the cleanup threshold, open an overflow bucket
past the overflow threshold, publish usage metrics, and record the run.

Events (events/capacity/, read by ``shelflife.domain.requests``): the schedule's
"Scheduled Event", a check now ``{"action": "check", "dry_run": bool}`` (run-now.json),
and the API's age-based cleanup ``{"action": "cleanup", "tier", "bucket"?, "dry_run":
bool (default true), "threshold_percent"?}`` (cleanup-old-images.json).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shelflife import wiring
from shelflife.adapters.metrics import publish
from shelflife.domain.requests import capacity_request
from shelflife.domain.settings import Settings
from shelflife.services.capacity import cleanup_measurements

settings = Settings.from_env()
service = wiring.capacity(settings)
logger = Logger()
metrics = Metrics()
tracer = Tracer()


def cleanup(request: dict[str, Any]) -> dict[str, Any]:
    names, results = service.cleanup_request(request)
    if not request["dry_run"]:
        publish(metrics, cleanup_measurements(results))
    logger.info("age-based cleanup", extra={"buckets": names, "dry_run": request["dry_run"]})
    return {"dry_run": request["dry_run"], "cleanups": [result.as_dict() for result in results]}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = capacity_request(event)
    if request["action"] == "cleanup":
        return cleanup(request)
    report = service.check(dry_run=request["dry_run"])
    logger.set_correlation_id(report.run_id)
    publish(metrics, report.measurements(settings))
    for failure in report.failures:
        logger.error("overflow bucket not opened", extra={"failure": failure})
    logger.info("capacity checked", extra=report.counts(settings))
    return report.as_dict()
