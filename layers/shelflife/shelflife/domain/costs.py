"""What keeping and moving an image costs, in USD, priced from the price book
(``shelflife.domain.pricebook``): storage, requests, retrieval, egress, minimum
durations and minimum billable sizes of the offer each tier stores on
(``Settings.offer_name``), where settings may override a backend's storage price,
egress and minimum duration (``SHELFLIFE_PRICE_*``, ``SHELFLIFE_EGRESS_*``,
``SHELFLIFE_MIN_STORAGE_DAYS_*``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from shelflife.domain import pricebook
from shelflife.domain.settings import BackendName, Settings, TierName

GB = 1024**3
DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class ProviderCosts:
    """The prices of the offer a tier stores on."""

    storage_per_gb_month: float
    egress_per_gb: float
    write_per_request: float
    read_per_request: float
    min_storage_days: int
    retrieval_per_gb: float = 0.0
    min_object_bytes: int = 0
    provider: str = ""

    def storage(self, size: int, days: float) -> float:
        """Keeping ``size`` bytes for ``days`` (billed at least the minimum size)."""
        billable = max(size, self.min_object_bytes)
        return self.storage_per_gb_month * billable / GB * days / DAYS_PER_MONTH


FREE = ProviderCosts(0.0, 0.0, 0.0, 0.0, 0)


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
        """The backend's own offer (the book's ``[backends]``)."""
        if backend is BackendName.MEMORY:
            return FREE
        return self._costs(pricebook.book().backends[backend.value], backend)

    def tier(self, tier: TierName, backend: BackendName | None = None) -> ProviderCosts:
        """The offer ``tier`` stores on (on ``backend``: HOT's serving buckets')."""
        name = self.settings.offer_name(tier, backend)
        if name is None:
            return FREE
        return self._costs(name, self.settings.shelf(tier, backend).backend)

    def _costs(self, name: str, backend: BackendName) -> ProviderCosts:
        offer = pricebook.book().offer(name)
        own = backend is not BackendName.MEMORY and name == pricebook.book().backends.get(
            backend.value
        )
        # The backend's overrides are of its own offer's prices, not of its other classes.
        return ProviderCosts(
            storage_per_gb_month=(
                self.settings.price_per_gb_month(backend) if own else offer.storage_per_gb_month
            ),
            egress_per_gb=self.settings.egress_per_gb(backend) if own else offer.egress_per_gb,
            write_per_request=offer.write_per_request,
            read_per_request=offer.read_per_request,
            min_storage_days=self.settings.min_storage_days(backend) if own else offer.min_days,
            retrieval_per_gb=offer.retrieval_per_gb,
            min_object_bytes=offer.min_object_bytes,
            provider=offer.provider,
        )

    def import_cost(
        self, *, photos: Mapping[TierName, int], keys: int, bytes_read: int, source: BackendName
    ) -> dict[str, float]:
        """What an import costs once, in USD at the book's list prices: each photo's
        work in the import function with its audit entry (``[stack] imported``) and
        its put in the tier it goes to (``photos``: how many to each); the source's
        listing (a page per 1,000 keys, priced as a write as S3 prices LIST), its GETs
        of ``keys`` and the egress of ``bytes_read`` (none from S3 in the stack's
        region; R2's is free; B2's at its offer's price). What the photos then cost to
        keep is the store's usual bill."""
        book = pricebook.book()
        shape = self.settings.stack_shape()
        per_photo = book.compute_cost(book.stack.imported, shape) + (
            book.stack.imported.audit_entries * book.compute_cost(book.stack.audit_entry, shape)
        )
        operations = sum(
            count * (per_photo + self.tier(tier).write_per_request)
            for tier, count in photos.items()
        )
        origin = self.provider(source)
        reads = keys * origin.read_per_request + math.ceil(keys / 1000) * origin.write_per_request
        egress = 0.0 if source is BackendName.S3 else bytes_read / GB * origin.egress_per_gb
        return {
            "operations_usd": operations,
            "source_reads_usd": reads,
            "source_egress_usd": egress,
            "total_usd": operations + reads + egress,
        }

    def variant(self, size: int) -> dict[str, float]:
        """A sized variant of ``size`` bytes (``services.variants``), in USD at the book's
        list prices: made once (the first request's work, ``[stack] variant``, and its
        PUT on HOT's offer), kept a month (HOT's storage of it and the record's extra
        bytes in the table), and each later request (``[stack] variant_view`` and the
        GET of it on HOT's offer, with HOT's egress of its bytes when it is served
        out of the provider)."""
        book = pricebook.book()
        shape = self.settings.stack_shape()
        hot = self.tier(TierName.HOT)
        made = book.compute_cost(book.stack.variant, shape) + hot.write_per_request
        kept = hot.storage(size, DAYS_PER_MONTH) + (
            book.stack.variant_record_bytes / GB * book.compute.table_storage_per_gb_month
        )
        served = book.compute_cost(book.stack.variant_view, shape) + hot.read_per_request
        served += hot.egress_per_gb * size / GB
        return {"made_usd": made, "kept_month_usd": kept, "served_usd": served}

    def storage(self, tier: TierName, size: int, days: float) -> float:
        """Keeping ``size`` bytes in ``tier`` for ``days``."""
        return self.tier(tier).storage(size, days)

    def move(
        self,
        size: int,
        source: TierName,
        destination: TierName,
        *,
        stored_since: datetime,
        now: datetime,
        until: datetime,
    ) -> MoveEstimate:
        """Moving ``size`` bytes stored in ``source`` since ``stored_since`` to
        ``destination`` at ``now``, where they stay until ``until`` (the image's next
        scheduled action after the move): the requests, the source's retrieval fee,
        data transfer out when the move leaves the provider, and what is left of the
        source's minimum duration, against the storage it saves (the destination billed
        at least its minimum duration and size)."""
        src, dst = self.tier(source), self.tier(destination)
        cost = src.read_per_request + dst.write_per_request
        cost += src.retrieval_per_gb * size / GB
        if src.provider != dst.provider:
            cost += src.egress_per_gb * size / GB
        stored_days = (now - stored_since).total_seconds() / 86400
        cost += src.storage(size, max(0.0, src.min_storage_days - stored_days))
        days = max(0.0, (until - now).total_seconds() / 86400)
        # The destination bills at least its minimum duration, whenever the image leaves.
        saving = src.storage(size, days) - dst.storage(size, max(days, dst.min_storage_days))
        return MoveEstimate(cost=cost, saving=saving)

    def serve(self, size: int, view_days: float, days: float) -> MoveEstimate:
        """Moving a published photo of ``size`` bytes from HOT to the serving buckets
        (``Settings.serve``) for the ``days`` it has left, when it is asked for on
        ``view_days`` days: the move (requests, data transfer out of the source's
        provider, the destination's storage billed at least its minimum) against what
        serving it from HOT would cost (at least one download a view-day, each paying
        HOT's egress beyond the destination's, and HOT's storage for those days)."""
        if self.settings.serve is None:
            return MoveEstimate(cost=0.0, saving=0.0)
        src = self.tier(TierName.HOT)
        dst = self.tier(TierName.HOT, self.settings.serve.backend)
        cost = src.read_per_request + dst.write_per_request
        cost += src.retrieval_per_gb * size / GB
        if src.provider != dst.provider:
            cost += src.egress_per_gb * size / GB
        cost += src.storage(size, src.min_storage_days)
        cost += dst.storage(size, max(days, dst.min_storage_days))
        per_view = (src.egress_per_gb - dst.egress_per_gb) * size / GB
        per_view += src.read_per_request - dst.read_per_request
        saving = view_days * per_view + src.storage(size, days)
        return MoveEstimate(cost=cost, saving=saving)
