"""capacity: every 5 minutes (EventBridge), or on demand from the API, check every
bucket's usage: clean up past the cleanup threshold, open an overflow bucket past the
overflow threshold, publish usage metrics, and record the run.

Events: the schedule's "Scheduled Event", or a direct invocation
``{"action": "check", "dry_run": bool}`` (events/capacity/run-now.json).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shelflife.capacity import CapacityReport, CapacityService
from shelflife.errors import InvalidArgument
from shelflife.settings import Settings

settings = Settings.from_env()
service = CapacityService.from_settings(settings)
logger = Logger()
metrics = Metrics()
tracer = Tracer()


def parse(event: dict[str, Any]) -> bool:
    """Whether this is a dry run; a clear error for an event this function does not
    take."""
    if event.get("detail-type") == "Scheduled Event":
        return False
    if event.get("action", "check") != "check":
        raise InvalidArgument(f"unknown action {event.get('action')!r}; the one action is 'check'")
    dry_run = event.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidArgument(f"dry_run must be true or false, got {dry_run!r}")
    return dry_run


def publish(report: CapacityReport) -> None:
    tiers: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for bucket in report.buckets:
        # One metric object per bucket: tier and bucket are this datapoint's dimensions.
        with single_metric(
            name="BucketUsedPercent",
            unit=MetricUnit.Percent,
            value=bucket.percent,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            metric.add_dimension(name="tier", value=bucket.tier)
            metric.add_dimension(name="bucket", value=bucket.name)
        if bucket.status != "missing":
            tiers[bucket.tier][0] += bucket.used_bytes
            tiers[bucket.tier][1] += bucket.capacity_bytes
    for tier, (used, capacity) in sorted(tiers.items()):
        with single_metric(
            name="TierUsedPercent",
            unit=MetricUnit.Percent,
            value=100 * used / capacity,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            metric.add_dimension(name="tier", value=tier)
    counts = report.counts(settings)
    # The alarms in template.yaml watch these two.
    metrics.add_metric(name="BucketsMarkedFull", unit=MetricUnit.Count, value=counts["marked_full"])
    metrics.add_metric(
        name="OverflowCreationFailures", unit=MetricUnit.Count, value=counts["overflow_failed"]
    )
    metrics.add_metric(
        name="OverflowBucketsOpened", unit=MetricUnit.Count, value=counts["overflow_opened"]
    )
    metrics.add_metric(
        name="CleanupImagesDeleted", unit=MetricUnit.Count, value=counts["images_deleted"]
    )
    metrics.add_metric(name="CleanupBytesFreed", unit=MetricUnit.Bytes, value=counts["bytes_freed"])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    dry_run = parse(event)
    report = service.check(dry_run=dry_run)
    logger.set_correlation_id(report.run_id)
    if not dry_run:
        publish(report)
    for failure in report.failures:
        logger.error("overflow bucket not opened", extra={"failure": failure})
    logger.info("capacity checked", extra=report.counts(settings))
    return report.as_dict()
