"""What keeping and moving an image costs, in USD, priced from the price book
(``shelflife.domain.pricebook``): storage, requests, egress and minimum durations of the
offer each backend stores on, where settings may override storage, egress and minimum
durations (``SHELFLIFE_PRICE_*``, ``SHELFLIFE_EGRESS_*``, ``SHELFLIFE_MIN_STORAGE_DAYS_*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shelflife.domain import pricebook
from shelflife.domain.settings import BackendName, Settings

GB = 1024**3
DAYS_PER_MONTH = 30


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
        if backend is BackendName.MEMORY:
            return ProviderCosts(0.0, 0.0, 0.0, 0.0, 0)
        offer = pricebook.book().for_backend(backend.value)
        return ProviderCosts(
            storage_per_gb_month=self.settings.price_per_gb_month(backend),
            egress_per_gb=self.settings.egress_per_gb(backend),
            write_per_request=offer.write_per_request,
            read_per_request=offer.read_per_request,
            min_storage_days=self.settings.min_storage_days(backend),
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
