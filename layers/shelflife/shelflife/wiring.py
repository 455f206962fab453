"""The one place that knows which adapter backs which port: every service the functions
run, built from ``Settings`` (DESIGN.md, "The layer's floors").

Services take their collaborators in their constructors and never build an adapter;
handlers call these at module scope (cold-start scope) and tests build services
with adapters of their own (in-memory, moto, a fault injector) instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from shelflife.adapters.backends import ProviderBackends
from shelflife.adapters.invocation import LambdaInvoker
from shelflife.adapters.queues import SqsQueue
from shelflife.adapters.streams import TableStream
from shelflife.adapters.table.audit import DynamoAuditLog
from shelflife.adapters.table.dynamo import DynamoRepository, stream_change
from shelflife.domain.audit import AuditLog
from shelflife.domain.repository import Repository
from shelflife.domain.settings import Settings
from shelflife.domain.storage import Backends
from shelflife.services.audit import AuditService
from shelflife.services.capacity import CapacityService
from shelflife.services.cleanup import CleanupService
from shelflife.services.imports import ImportService
from shelflife.services.ingest import IngestService
from shelflife.services.lifecycle import LifecycleService
from shelflife.services.operations import Operations
from shelflife.services.photos import PhotoService
from shelflife.services.reconcile import ReconcileService
from shelflife.services.stats import StatsService
from shelflife.services.variants import VariantService

# A sweep of the lifecycle function: (request, context) to the run's report.
Sweep = Callable[..., dict[str, Any]]
Once = Callable[[Sweep], Sweep]


def ingest(settings: Settings) -> IngestService:
    return IngestService(
        settings,
        DynamoRepository.from_settings(settings),
        ProviderBackends(settings),
        audit=audit_log(settings),
    )


def imports(settings: Settings) -> ImportService:
    """The import function's service: ingest's pipeline on another bucket's photos."""
    ingest_service = ingest(settings)
    return ImportService(
        settings, ingest_service.repository, ingest_service.backends, ingest=ingest_service
    )


def audit_log(settings: Settings) -> AuditLog | None:
    """The audit table, or None for a deployment without one (its functions write no
    trail and its routes answer 503)."""
    if settings.audit_table_name is None:
        return None
    return DynamoAuditLog(settings.audit_table_name, region=settings.region)


def audit(settings: Settings) -> AuditService | None:
    """The audit function's service: entries from the table's stream."""
    log = audit_log(settings)
    return None if log is None else AuditService(settings, log, read_change=stream_change)


def lifecycle(settings: Settings) -> LifecycleService:
    """The sweep, with the queue an unfinished run continues through (if configured)."""
    url = settings.lifecycle_continuation_queue_url
    return LifecycleService(
        settings,
        DynamoRepository.from_settings(settings),
        ProviderBackends(settings),
        continuations=SqsQueue(url) if url else None,
    )


def lifecycle_idempotency(settings: Settings) -> tuple[IdempotencyConfig, Once]:
    """The lifecycle's idempotency: its config (the handler registers each invocation's
    context) and a decorator that runs a function once per request ``key``
    (``domain.requests``). The records live in the table, under their own partition,
    expiring through its TTL; a run takes at most one invocation's 15 minutes, so a
    day is ample."""
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value="IDEMPOTENCY#lifecycle",
        expiry_attr="expires_at",
    )
    config = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=86400)

    def once(function: Sweep) -> Sweep:
        wrapped: Sweep = idempotent_function(
            data_keyword_argument="request", config=config, persistence_store=persistence
        )(function)
        return wrapped

    return config, once


def capacity(settings: Settings) -> CapacityService:
    return CapacityService(
        settings, DynamoRepository.from_settings(settings), ProviderBackends(settings)
    )


def cleanup(
    settings: Settings,
    *,
    repository: Repository | None = None,
    backends: Backends | None = None,
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


def reconcile(
    settings: Settings,
    *,
    repository: Repository | None = None,
    backends: Backends | None = None,
) -> ReconcileService:
    return ReconcileService(
        settings,
        repository or DynamoRepository.from_settings(settings),
        backends or ProviderBackends(settings),
    )


@dataclass(frozen=True)
class ApiServices:
    """What the api function serves from: one table and one set of backends for all."""

    settings: Settings
    repository: DynamoRepository
    photos: PhotoService
    variants: VariantService
    cleanup: CleanupService
    stats: StatsService
    operations: Operations
    audit: AuditService | None


def api(settings: Settings) -> ApiServices:
    repository = DynamoRepository.from_settings(settings)
    backends = ProviderBackends(settings)
    cleanup_service = cleanup(settings, repository=repository, backends=backends)
    photos = PhotoService(settings, repository, backends)
    return ApiServices(
        settings=settings,
        repository=repository,
        photos=photos,
        variants=VariantService(photos),
        cleanup=cleanup_service,
        stats=StatsService(settings, repository, cleanup_health=cleanup_service.health),
        operations=Operations(settings, LambdaInvoker()),
        audit=audit(settings),
    )
