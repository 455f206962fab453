"""Publishing measurements (``shelflife.domain.measurements``) through Powertools'
metrics (CloudWatch embedded metric format, written to the function's log)."""

from __future__ import annotations

from collections.abc import Iterable

from aws_lambda_powertools import Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from shelflife.domain.measurements import Measurement


def publish(metrics: Metrics, measurements: Iterable[Measurement]) -> None:
    for measurement in measurements:
        unit = MetricUnit(measurement.unit)
        if not measurement.dimensions:
            metrics.add_metric(name=measurement.name, unit=unit, value=measurement.value)
            continue
        # Its own metric object: the dimensions belong to this datapoint only.
        with single_metric(
            name=measurement.name,
            unit=unit,
            value=measurement.value,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            for name, value in measurement.dimensions:
                metric.add_dimension(name=name, value=value)
