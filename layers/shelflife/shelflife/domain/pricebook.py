"""The price book (``prices.toml`` beside this module): every offer the store can use,
AWS data transfer out, and the stack's own fixed monthly costs, each with its source
and the day it was checked. Every price the code uses comes from here; settings may
override a backend's storage price, egress and minimum duration
(``shelflife.domain.settings``, ``SHELFLIFE_PRICE_*``)."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shelflife.domain.errors import ConfigurationError

BOOK = Path(__file__).with_name("prices.toml")


class Sourced(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    checked: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class Offer(Sourced):
    provider: str
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
    monthly_usd: float = Field(ge=0)
    what: str
    free_count: int = Field(default=0, ge=0)


class PriceBook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    transfer: Transfer
    offers: dict[str, Offer]
    backends: dict[str, str]
    fixed: dict[str, FixedCost]

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


def read(path: Path = BOOK) -> PriceBook:
    with path.open("rb") as file:
        return PriceBook.model_validate(tomllib.load(file))


@functools.cache
def book() -> PriceBook:
    """The layer's price book, read once per process."""
    return read()
