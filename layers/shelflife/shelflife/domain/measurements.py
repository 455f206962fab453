"""What a run or an upload publishes as metrics: names, units and dimensions stated
by the report that knows them (the alarms in template.yaml watch some of these names),
published by ``shelflife.adapters.metrics``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["Count", "Bytes", "Percent"]


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    unit: Unit = "Count"
    # A measurement with dimensions is its own datapoint (tier, bucket, reason).
    dimensions: tuple[tuple[str, str], ...] = ()
