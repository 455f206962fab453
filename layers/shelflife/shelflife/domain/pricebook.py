"""The price book (``prices.toml`` beside this module): every offer the store can use,
AWS data transfer out, and the stack's own fixed monthly costs, each with its source
and the day it was checked. Every price the code uses comes from here; settings may
override a backend's storage price, egress and minimum duration
(``shelflife.domain.settings``, ``SHELFLIFE_PRICE_*``)."""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shelflife.domain.errors import ConfigurationError

BOOK = Path(__file__).with_name("prices.toml")


class Sourced(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    checked: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class Offer(Sourced):
    provider: str
    # The storage class an object is written with to be on this offer (S3, R2); None
    # where the provider has one class (B2).
    storage_class: str | None = None
    storage_per_gb_month: float = Field(ge=0)
    write_per_1000: float = Field(ge=0)
    read_per_1000: float = Field(ge=0)
    egress_per_gb: float = Field(ge=0)
    retrieval_per_gb: float = Field(ge=0)
    min_days: int = Field(ge=0)
    min_object_bytes: int = Field(ge=0)
    free_storage_gb_month: float = Field(default=0, ge=0)
    free_writes_month: int = Field(default=0, ge=0)
    free_reads_month: int = Field(default=0, ge=0)
    # S3 Intelligent-Tiering only: its tiers, their ages and the monitoring fee.
    infrequent_per_gb_month: float | None = Field(default=None, ge=0)
    archive_instant_per_gb_month: float | None = Field(default=None, ge=0)
    infrequent_after_days: int | None = Field(default=None, ge=1)
    archive_instant_after_days: int | None = Field(default=None, ge=1)
    monitoring_per_1000_objects_month: float | None = Field(default=None, ge=0)
    monitored_min_bytes: int | None = Field(default=None, ge=0)

    @property
    def write_per_request(self) -> float:
        return self.write_per_1000 / 1000

    @property
    def read_per_request(self) -> float:
        return self.read_per_1000 / 1000


class Transfer(Sourced):
    aws_out_per_gb: float = Field(ge=0)
    aws_out_free_gb_month: float = Field(ge=0)


class FixedCost(Sourced):
    """An item the stack pays every month, ``count`` of them at ``monthly_usd`` each,
    in the stacks that have it (``when``, see ``Shape``)."""

    monthly_usd: float = Field(ge=0)
    count: int = Field(default=1, ge=0)
    when: Literal["always", "credentials", "full_monitoring"] = "always"
    what: str


@dataclass(frozen=True)
class Shape:
    """What a deployed stack has that may cost by itself: the R2/B2 keys' parameter (a
    tier on R2 or B2) and full monitoring (metrics, traces, alarms: Monitoring=full)."""

    credentials: bool = False
    full_monitoring: bool = False

    def has(self, item: FixedCost) -> bool:
        return {
            "always": True,
            "credentials": self.credentials,
            "full_monitoring": self.full_monitoring,
        }[item.when]


# The template's default stack: every tier on AWS (no keys), lean monitoring.
LEAN = Shape()


class Compute(Sourced):
    """What the stack's own work is priced at: Lambda (arm64), the HTTP API, the
    table's on-demand request units, log ingestion."""

    lambda_per_request: float = Field(ge=0)
    lambda_arm64_per_gb_second: float = Field(ge=0)
    http_api_per_request: float = Field(ge=0)
    table_write: float = Field(ge=0)
    table_read: float = Field(ge=0)
    table_storage_per_gb_month: float = Field(ge=0)
    logs_per_gb: float = Field(ge=0)
    xray_per_trace: float = Field(ge=0)


class Use(BaseModel):
    """What one event (or one scheduled run) makes the stack do: one invocation of
    ``gb_seconds``, table request units, API requests and log bytes; ``per_month``
    for a scheduled run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gb_seconds: float = Field(ge=0)
    table_writes: float = Field(default=0, ge=0)
    table_reads: float = Field(default=0, ge=0)
    api_requests: float = Field(default=0, ge=0)
    log_bytes: float = Field(default=0, ge=0)
    per_month: float = Field(default=0, ge=0)
    # Entries the event adds to the audit trail (``domain.audit``), each written by the
    # audit function (the stack's ``audit_entry``) and kept ``audit_retention_days``.
    audit_entries: float = Field(default=0, ge=0)


class Stack(Sourced):
    upload: Use
    imported: Use
    view: Use
    draft_view: Use
    publish: Use
    move: Use
    transfer: Use
    relabel: Use
    serve: Use
    deletion: Use
    capacity: Use
    lifecycle: Use
    # A sized variant (``services.variants``): its first request renders and records
    # it; a later one reads the record and signs a URL. What the record grows by for
    # each variant it keeps (in the item and in the owner index, which projects all).
    variant: Use
    variant_view: Use
    variant_record_bytes: int = Field(ge=0)
    # What the table stores per image record: the item and its entry in each index it
    # is in, each with DynamoDB's 100 bytes of overhead; a deleted record (kept
    # ``deleted_record_days`` before the TTL removes it) is in fewer indexes.
    record_bytes: int = Field(ge=0)
    deleted_record_bytes: int = Field(ge=0)
    # One entry of the audit trail: the audit function's work for it (an invocation
    # each, batches being small at this scale), and what the audit table stores of it
    # (the item and its by_day index entry) for the template's retention.
    audit_entry: Use
    audit_entry_bytes: int = Field(ge=0)
    audit_retention_days: int = Field(ge=0)


class Pipeline(Sourced):
    """What a one-offer strategy's own pipeline does per event (``economics.pipeline_bill``)."""

    upload: Use
    publish: Use
    deletion: Use
    record_bytes: int = Field(ge=0)


class PriceBook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    transfer: Transfer
    offers: dict[str, Offer]
    backends: dict[str, str]
    fixed: dict[str, FixedCost]
    compute: Compute
    stack: Stack
    pipeline: Pipeline

    @model_validator(mode="after")
    def _backends_name_offers(self) -> Self:
        unknown = sorted(set(self.backends.values()) - set(self.offers))
        if unknown:
            raise ValueError(f"backends name offers the book does not have: {unknown}")
        return self

    def offer(self, name: str) -> Offer:
        try:
            return self.offers[name]
        except KeyError:
            known = ", ".join(sorted(self.offers))
            raise ConfigurationError(
                f"no offer {name!r} in the price book; known: {known}"
            ) from None

    def for_backend(self, backend: str) -> Offer:
        """The offer a storage backend (``s3``, ``r2``, ``b2``) stores on."""
        return self.offer(self.backends[backend])

    def compute_cost(self, use: Use, shape: Shape = LEAN) -> float:
        """One occurrence of ``use`` at the book's compute prices (traced with full
        monitoring: X-Ray records every scheduled run and nearly every request at this
        scale, its sampling keeping one a second)."""
        c = self.compute
        return (
            (c.xray_per_trace if shape.full_monitoring else 0.0)
            + c.lambda_per_request
            + use.gb_seconds * c.lambda_arm64_per_gb_second
            + use.table_writes * c.table_write
            + use.table_reads * c.table_read
            + use.api_requests * c.http_api_per_request
            + use.log_bytes / 1024**3 * c.logs_per_gb
        )

    def stack_fixed_monthly(self, shape: Shape = LEAN) -> float:
        """What the stack costs a month whatever it keeps: the fixed items its shape
        has and its scheduled runs (the capacity check at the template's default rate,
        the daily lifecycle)."""
        items = sum(
            item.monthly_usd * item.count for item in self.fixed.values() if shape.has(item)
        )
        runs = (self.stack.capacity, self.stack.lifecycle)
        return items + sum(use.per_month * self.compute_cost(use, shape) for use in runs)


def read(path: Path = BOOK) -> PriceBook:
    with path.open("rb") as file:
        return PriceBook.model_validate(tomllib.load(file))


def with_changes(base: PriceBook, changes: Mapping[str, Any]) -> PriceBook:
    """``base`` with ``changes`` merged over it, table by table: a change names only
    what it changes (``{"stack": {"upload": {"table_writes": 11}}}``), and may add an
    offer or a fixed cost whole. ``ConfigurationError`` for a name the book does not
    know or a value it refuses, with the path of each."""
    merged = _merged(base.model_dump(), changes, ())
    try:
        return PriceBook.model_validate(merged)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in e.errors()
        )
        raise ConfigurationError(f"price changes refused: {problems}") from None


def _merged(
    base: Mapping[str, Any], changes: Mapping[str, Any], at: tuple[str, ...]
) -> dict[str, Any]:
    merged = dict(base)
    for name, value in changes.items():
        current = merged.get(name)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[name] = _merged(current, value, (*at, name))
        elif isinstance(current, Mapping) or (current is not None and isinstance(value, Mapping)):
            path = ".".join((*at, name))
            raise ConfigurationError(f"price changes refused: {path} is a table here")
        else:
            merged[name] = value  # a value, or a new table (an offer, a fixed cost)
    return merged


def read_changes(path: Path, base: PriceBook | None = None) -> PriceBook:
    """The book (``base``, default the layer's) with the changes of the TOML file at
    ``path``; ``ConfigurationError`` when it cannot be read or is refused."""
    try:
        with path.open("rb") as file:
            changes = tomllib.load(file)
    except OSError as e:
        raise ConfigurationError(f"price changes {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigurationError(f"price changes {path}: not TOML ({e})") from None
    return with_changes(base or book(), changes)


@functools.cache
def book() -> PriceBook:
    """The layer's price book, read once per process."""
    return read()
