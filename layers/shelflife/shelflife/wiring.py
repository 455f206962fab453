"""The one place that knows which adapter backs which port: every service the functions
run, built from ``Settings`` (DESIGN.md, "The layer's floors").

Services take their collaborators in their constructors and never build an adapter;
handlers call these at module scope (cold-start scope) and tests build services
with adapters of their own (in-memory, moto, a fault injector) instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from shelflife.adapters.backends import ProviderBackends
from shelflife.adapters.continuation import QueueContinuation
from shelflife.adapters.invocation import LambdaInvoker
from shelflife.adapters.queues import SqsQueue
from shelflife.adapters.streams import TableStream
from shelflife.adapters.table.dynamo import DynamoRepository, stream_change
from shelflife.services.capacity import CapacityService
from shelflife.services.cleanup import CleanupService
from shelflife.services.ingest import IngestService
from shelflife.services.lifecycle import LifecycleService
from shelflife.services.operations import Operations
from shelflife.services.photos import PhotoService
from shelflife.services.reconcile import ReconcileService
from shelflife.services.stats import StatsService
from shelflife.settings import Settings


def ingest(settings: Settings) -> IngestService:
    return IngestService(
        settings, DynamoRepository.from_settings(settings), ProviderBackends(settings)
    )


def lifecycle(settings: Settings) -> LifecycleService:
    return LifecycleService(
        settings, DynamoRepository.from_settings(settings), ProviderBackends(settings)
    )


def lifecycle_continuation(settings: Settings) -> QueueContinuation | None:
    """Where an unfinished sweep queues the rest of its run (None: it is not queued)."""
    url = settings.lifecycle_continuation_queue_url
    return QueueContinuation(url) if url else None


def capacity(settings: Settings) -> CapacityService:
    return CapacityService(
        settings, DynamoRepository.from_settings(settings), ProviderBackends(settings)
    )


def cleanup(
    settings: Settings,
    *,
    repository: DynamoRepository | None = None,
    backends: ProviderBackends | None = None,
) -> CleanupService:
    """Cleanup with its dead-letter queue (if configured) and the stream's reader."""
    url = settings.cleanup_dead_letter_queue_url
    return CleanupService(
        repository or DynamoRepository.from_settings(settings),
        backends or ProviderBackends(settings),
        settings=settings,
        dead_letters=SqsQueue(url) if url else None,
        stream=TableStream(),
        read_change=stream_change,
    )


def reconcile(settings: Settings) -> ReconcileService:
    return ReconcileService(
        settings, DynamoRepository.from_settings(settings), ProviderBackends(settings)
    )


@dataclass(frozen=True)
class ApiServices:
    """What the api function serves from: one table and one set of backends for all."""

    settings: Settings
    repository: DynamoRepository
    photos: PhotoService
    cleanup: CleanupService
    stats: StatsService
    operations: Operations


def api(settings: Settings) -> ApiServices:
    repository = DynamoRepository.from_settings(settings)
    backends = ProviderBackends(settings)
    cleanup_service = cleanup(settings, repository=repository, backends=backends)
    return ApiServices(
        settings=settings,
        repository=repository,
        photos=PhotoService(settings, repository, backends),
        cleanup=cleanup_service,
        stats=StatsService(settings, repository, cleanup_health=cleanup_service.health),
        operations=Operations(settings, LambdaInvoker()),
    )
