"""capacity: every 5 minutes (EventBridge), or on demand from the API, check every
bucket's usage: clean up past the cleanup threshold, open an overflow bucket past the
overflow threshold, publish usage metrics, and record the run.

Events: the schedule's "Scheduled Event", or a direct invocation
``{"action": "check", "dry_run": bool}`` (events/capacity/run-now.json); the API's
age-based cleanup ``{"action": "cleanup", "tier", "bucket"?, "dry_run": bool (default
true), "threshold_percent"?}`` (events/capacity/cleanup-old-images.json).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shelflife import wiring
from shelflife.domain.errors import InvalidArgument
from shelflife.services.capacity import CapacityReport
from shelflife.settings import Settings, TierName

settings = Settings.from_env()
service = wiring.capacity(settings)
logger = Logger()
metrics = Metrics()
tracer = Tracer()


def parse(event: dict[str, Any]) -> dict[str, Any]:
    """The request in one shape; a clear error for an event this function does not
    take."""
    if event.get("detail-type") == "Scheduled Event":
        return {"action": "check", "dry_run": False}
    action = event.get("action", "check")
    if action not in ("check", "cleanup"):
        raise InvalidArgument(f"unknown action {action!r}; the actions are 'check' and 'cleanup'")
    # A cleanup asked for by hand is a dry run unless it says otherwise.
    dry_run = event.get("dry_run", action == "cleanup")
    if not isinstance(dry_run, bool):
        raise InvalidArgument(f"dry_run must be true or false, got {dry_run!r}")
    request: dict[str, Any] = {"action": action, "dry_run": dry_run}
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
    return request


def cleanup(request: dict[str, Any]) -> dict[str, Any]:
    """The age-based cleanup of one bucket, or of every bucket of a tier."""
    tier: TierName = request["tier"]
    names = (
        [request["bucket"]]
        if request["bucket"]
        else [bucket.name for bucket in service.repository.list_buckets(tier.value)]
    )
    results = [
        service.cleanup(
            tier,
            name,
            dry_run=request["dry_run"],
            threshold_percent=request["threshold_percent"],
        )
        for name in names
    ]
    if not request["dry_run"]:
        metrics.add_metric(
            name="CleanupImagesDeleted",
            unit=MetricUnit.Count,
            value=sum(len(result.deleted) for result in results),
        )
        metrics.add_metric(
            name="CleanupBytesFreed",
            unit=MetricUnit.Bytes,
            value=sum(result.freed_bytes for result in results),
        )
    logger.info("age-based cleanup", extra={"buckets": names, "dry_run": request["dry_run"]})
    return {"dry_run": request["dry_run"], "cleanups": [result.as_dict() for result in results]}


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
    request = parse(event)
    if request["action"] == "cleanup":
        return cleanup(request)
    dry_run = request["dry_run"]
    report = service.check(dry_run=dry_run)
    logger.set_correlation_id(report.run_id)
    if not dry_run:
        publish(report)
    for failure in report.failures:
        logger.error("overflow bucket not opened", extra={"failure": failure})
    logger.info("capacity checked", extra=report.counts(settings))
    return report.as_dict()
