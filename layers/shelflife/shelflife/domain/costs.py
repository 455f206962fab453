"""What keeping and moving an image costs, in USD, from the providers' list prices.

Storage prices, egress and minimum storage durations are settings (``SHELFLIFE_PRICE_*``,
``SHELFLIFE_EGRESS_*``, ``SHELFLIFE_MIN_STORAGE_DAYS_*``); request prices are the list
prices below, small enough that only tiny images notice them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shelflife.domain.settings import BackendName, Settings

GB = 1024**3
DAYS_PER_MONTH = 30
# (write, read) per request: S3 Standard PUT/COPY and GET; R2 class A and B; B2 uploads
# are free and downloads are class B.
REQUEST_PRICES: dict[BackendName, tuple[float, float]] = {
    BackendName.S3: (0.005 / 1000, 0.0004 / 1000),
    BackendName.R2: (4.50 / 1_000_000, 0.36 / 1_000_000),
    BackendName.B2: (0.0, 0.004 / 10_000),
    BackendName.MEMORY: (0.0, 0.0),
}


@dataclass(frozen=True)
class ProviderCosts:
    storage_per_gb_month: float
    egress_per_gb: float
    write_per_request: float
    read_per_request: float
    min_storage_days: int


@dataclass(frozen=True)
class MoveEstimate:
    """A move's one-time cost against what it saves before the image's next action."""

    cost: float
    saving: float

    @property
    def worth_it(self) -> bool:
        return self.saving >= self.cost


class CostModel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def provider(self, backend: BackendName) -> ProviderCosts:
        write, read = REQUEST_PRICES[backend]
        if backend is BackendName.MEMORY:
            return ProviderCosts(0.0, 0.0, write, read, 0)
        name = backend.value
        return ProviderCosts(
            storage_per_gb_month=self.settings.price_per_gb_month(backend),
            egress_per_gb=getattr(self.settings, f"egress_{name}"),
            write_per_request=write,
            read_per_request=read,
            min_storage_days=getattr(self.settings, f"min_storage_days_{name}"),
        )

    def storage(self, backend: BackendName, size: int, days: float) -> float:
        """Keeping ``size`` bytes on ``backend`` for ``days``."""
        monthly = self.provider(backend).storage_per_gb_month
        return monthly * size / GB * days / DAYS_PER_MONTH

    def move(
        self,
        size: int,
        source: BackendName,
        destination: BackendName,
        *,
        stored_since: datetime,
        now: datetime,
        until: datetime,
    ) -> MoveEstimate:
        """Moving ``size`` bytes stored on ``source`` since ``stored_since`` to
        ``destination`` at ``now``, where they stay until ``until`` (the image's next
        scheduled action after the move)."""
        src, dst = self.provider(source), self.provider(destination)
        cost = src.read_per_request + dst.write_per_request
        if source is not destination:
            cost += src.egress_per_gb * size / GB
        stored_days = (now - stored_since).total_seconds() / 86400
        cost += self.storage(source, size, max(0.0, src.min_storage_days - stored_days))
        days = max(0.0, (until - now).total_seconds() / 86400)
        saving = self.storage(source, size, days) - self.storage(destination, size, days)
        return MoveEstimate(cost=cost, saving=saving)
