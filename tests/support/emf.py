"""The metrics Powertools printed as CloudWatch embedded metric format (EMF) lines."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricPoint:
    name: str
    dimensions: dict[str, str]
    value: float


def metric_points(output: str) -> list[MetricPoint]:
    """Every datapoint of every EMF blob in ``output``, with its own dimensions."""
    points = []
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            names = {name for group in directive["Dimensions"] for name in group}
            dimensions = {name: blob[name] for name in sorted(names)}
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                total = sum(value) if isinstance(value, list) else value
                points.append(MetricPoint(metric["Name"], dimensions, total))
    return points


def emitted_metrics(output: str) -> dict[str, float]:
    """Metric name -> value (the last datapoint of each name)."""
    return {point.name: point.value for point in metric_points(output)}
