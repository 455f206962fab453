"""The price book (issue 21, part 1): one data file holds every price, each entry names
its source and the day it was checked, settings override a backend's prices, and the
code prices from the book alone."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from shelflife.domain import pricebook
from shelflife.domain.costs import CostModel
from shelflife.domain.errors import ConfigurationError
from shelflife.domain.pricebook import PriceBook, book, read, read_changes, with_changes
from shelflife.domain.settings import BackendName, Settings
from tests.support.template import ROOT
from tests.unit.test_settings import ENV

LAYER = ROOT / "layers" / "shelflife" / "shelflife"


def test_every_offer_and_fixed_cost_names_its_page_and_day() -> None:
    prices = book()
    entries = [
        prices.transfer,
        prices.compute,
        *prices.offers.values(),
        *prices.fixed.values(),
    ]
    assert len(prices.offers) == 7  # S3 x4 (Standard, IT, IA, Glacier IR), R2 x2, B2
    for entry in entries:
        assert re.search(r"https://\S+", entry.source), entry
        assert re.fullmatch(r"2\d{3}-\d{2}-\d{2}", entry.checked), entry
    tiering = prices.offer("s3_intelligent_tiering")
    assert tiering.monitored_min_bytes == 128 * 1024
    assert (tiering.infrequent_after_days, tiering.archive_instant_after_days) == (30, 90)
    assert prices.offer("s3_glacier_instant").min_days == 90
    assert prices.offer("r2_infrequent_access").retrieval_per_gb > 0


def test_each_backend_stores_on_an_offer_of_the_book() -> None:
    prices = book()
    assert {backend: prices.for_backend(backend).provider for backend in ("s3", "r2", "b2")} == {
        "s3": "aws",
        "r2": "cloudflare",
        "b2": "backblaze",
    }


def test_a_book_naming_an_unknown_offer_is_refused(tmp_path: Path) -> None:
    text = pricebook.BOOK.read_text().replace('b2 = "b2"', 'b2 = "b3"')
    (tmp_path / "prices.toml").write_text(text)
    with pytest.raises(ValueError, match="b3"):
        read(tmp_path / "prices.toml")
    with pytest.raises(ConfigurationError, match="no offer"):
        book().offer("glacier_deep_archive")


def test_changes_merge_over_the_book_table_by_table(tmp_path: Path) -> None:
    base = book()
    changed = with_changes(
        base,
        {
            "stack": {"upload": {"table_writes": 3}, "record_bytes": 500},
            "offers": {"s3_standard": {"storage_per_gb_month": 0.02}},
        },
    )
    # What is named changes; what is beside it stays.
    assert changed.stack.upload.table_writes == 3
    assert changed.stack.upload.gb_seconds == base.stack.upload.gb_seconds
    assert changed.stack.record_bytes == 500
    assert changed.stack.publish == base.stack.publish
    assert changed.offer("s3_standard").storage_per_gb_month == 0.02
    assert changed.offer("s3_standard").write_per_1000 == base.offer("s3_standard").write_per_1000
    assert changed.offer("b2") == base.offer("b2")
    assert book() == base  # the layer's book is untouched
    path = tmp_path / "changes.toml"
    path.write_text("[stack]\nupload = { table_writes = 3 }\n")
    assert read_changes(path).stack.upload.table_writes == 3


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"stack": {"upload": {"table_write": 3}}}, "stack.upload.table_write"),
        ({"stack": {"upload": {"table_writes": -1}}}, "stack.upload.table_writes"),
        ({"stack": {"upload": 3}}, "stack.upload is a table"),
        ({"stack": {"record_bytes": {"n": 1}}}, "stack.record_bytes"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_a_change_the_book_does_not_take_is_refused_by_its_path(
    changes: dict[str, object], says: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        with_changes(book(), changes)


def test_a_changes_file_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=re.escape("missing.toml")):
        read_changes(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[stack\n")
    with pytest.raises(ConfigurationError, match="not TOML"):
        read_changes(broken)


def doubled(prices: PriceBook) -> PriceBook:
    offers = {
        name: offer.model_copy(
            update={
                "storage_per_gb_month": offer.storage_per_gb_month * 2,
                "write_per_1000": offer.write_per_1000 * 2 + 1,
                "read_per_1000": offer.read_per_1000 * 2 + 1,
                "egress_per_gb": offer.egress_per_gb * 2 + 1,
                "min_days": offer.min_days + 7,
            }
        )
        for name, offer in prices.offers.items()
    }
    return prices.model_copy(update={"offers": offers})


@pytest.mark.parametrize("backend", [BackendName.S3, BackendName.R2, BackendName.B2])
def test_the_cost_model_prices_from_the_book_alone(
    backend: BackendName, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another book, every price changed: every price the model uses changes with it.
    other = doubled(book())
    monkeypatch.setattr(pricebook, "book", lambda: other)
    offer = other.for_backend(backend.value)
    costs = CostModel(Settings.from_env(ENV)).provider(backend)

    assert costs.storage_per_gb_month == offer.storage_per_gb_month
    assert costs.write_per_request == offer.write_per_1000 / 1000
    assert costs.read_per_request == offer.read_per_1000 / 1000
    assert costs.egress_per_gb == offer.egress_per_gb
    assert costs.min_storage_days == offer.min_days


def test_a_setting_overrides_the_book() -> None:
    overrides = {
        "SHELFLIFE_PRICE_R2": "0.5",
        "SHELFLIFE_EGRESS_S3": "0",
        "SHELFLIFE_MIN_STORAGE_DAYS_R2": "30",
    }
    settings = Settings.from_env({**ENV, **overrides})
    assert settings.price_per_gb_month("r2") == 0.5
    assert settings.egress_per_gb("s3") == 0
    assert settings.min_storage_days("r2") == 30
    # The rest stay the book's.
    assert settings.price_per_gb_month("s3") == book().offer("s3_standard").storage_per_gb_month
    assert settings.egress_per_gb("b2") == book().offer("b2").egress_per_gb


def number_literals(path: Path) -> set[float]:
    return {
        float(node.value)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and type(node.value) is float
    }


def test_no_price_constant_is_left_in_the_code() -> None:
    # Every price of the book, written anywhere in the layer or the functions as a
    # number, would be a second source of it.
    prices = book()
    values = (
        {
            value
            for offer in prices.offers.values()
            for value in (
                offer.storage_per_gb_month,
                offer.write_per_1000,
                offer.read_per_1000,
                offer.egress_per_gb,
                offer.retrieval_per_gb,
            )
            if value
        }
        | {fixed.monthly_usd for fixed in prices.fixed.values() if fixed.monthly_usd}
        | {prices.transfer.aws_out_per_gb}
        # logs_per_gb (0.50) is left out: a half is too common a number to mean a price.
        | {
            value
            for name, value in prices.compute.model_dump().items()
            if isinstance(value, float) and name != "logs_per_gb"
        }
    )
    found = {
        str(path.relative_to(ROOT)): sorted(number_literals(path) & values)
        for path in [*LAYER.rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
        if number_literals(path) & values
    }
    # units.py writes amounts under a cent with more decimals: a cent, not a price.
    assert found == {"layers/shelflife/shelflife/domain/units.py": [0.01]}


def test_a_tier_stores_on_an_offer_of_its_backend() -> None:
    base = {**ENV, "SHELFLIFE_COLD_BACKEND": "s3"}
    settings = Settings.from_env(base)
    assert settings.offer_name("cold") == "s3_glacier_instant"
    assert settings.storage_class("cold") == "GLACIER_IR"
    assert (
        settings.tier_price_per_gb_month("cold")
        == book().offer("s3_glacier_instant").storage_per_gb_month
    )
    chosen = Settings.from_env({**base, "SHELFLIFE_COLD_OFFER": "s3_standard_ia"})
    assert chosen.storage_class("cold") == "STANDARD_IA"
    with pytest.raises(
        ConfigurationError, match="SHELFLIFE_COLD_OFFER: 'b2' is not an offer of s3"
    ):
        Settings.from_env({**base, "SHELFLIFE_COLD_OFFER": "b2"})
    with pytest.raises(ConfigurationError, match="SHELFLIFE_COLD_OFFER: no offer 'glacier'"):
        Settings.from_env({**base, "SHELFLIFE_COLD_OFFER": "glacier"})
    # A backend's price override is of its own offer, not of its other classes.
    overridden = Settings.from_env({**base, "SHELFLIFE_PRICE_S3": "0.5"})
    assert overridden.tier_price_per_gb_month("hot") == 0.5
    assert overridden.tier_price_per_gb_month("cold") == settings.tier_price_per_gb_month("cold")


def test_a_move_into_glacier_instant_retrieval_is_priced_with_its_minimums() -> None:
    from datetime import UTC, datetime, timedelta

    from shelflife.domain.settings import TierName

    settings = Settings.from_env(
        {**ENV, "SHELFLIFE_HOT_BACKEND": "s3", "SHELFLIFE_COLD_BACKEND": "s3"}
    )
    glacier, standard = book().offer("s3_glacier_instant"), book().offer("s3_standard")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    size = 1024**2
    estimate = CostModel(settings).move(
        size, TierName.HOT, TierName.COLD, stored_since=now, now=now, until=now + timedelta(days=30)
    )
    # No data transfer out (both in AWS); Glacier IR's write; 90 days billed for 30.
    assert estimate.cost == pytest.approx(standard.read_per_request + glacier.write_per_request)
    gb = size / 1024**3
    assert estimate.saving == pytest.approx(
        gb * (standard.storage_per_gb_month * 1 - glacier.storage_per_gb_month * 3)
    )


def test_a_variant_is_priced_like_any_object_on_hot_plus_its_work() -> None:
    settings = Settings.from_env({**ENV, "SHELFLIFE_HOT_BACKEND": "r2"})
    prices, r2 = book(), book().offer("r2_standard")
    size = 20 * 1024
    costs = CostModel(settings).variant(size)
    work = prices.compute_cost(prices.stack.variant, settings.stack_shape())
    view = prices.compute_cost(prices.stack.variant_view, settings.stack_shape())
    table = prices.stack.variant_record_bytes / 1024**3 * prices.compute.table_storage_per_gb_month
    # R2: a class A write to make it, a class B read and no egress to serve it.
    assert costs["made_usd"] == pytest.approx(work + r2.write_per_1000 / 1000)
    assert costs["kept_month_usd"] == pytest.approx(
        max(size, r2.min_object_bytes) / 1024**3 * r2.storage_per_gb_month + table
    )
    assert costs["served_usd"] == pytest.approx(view + r2.read_per_1000 / 1000)
    # S3 bills its egress on every request served out of AWS.
    s3 = CostModel(Settings.from_env({**ENV, "SHELFLIFE_HOT_BACKEND": "s3"})).variant(size)
    egress = book().offer("s3_standard").egress_per_gb * size / 1024**3
    assert s3["served_usd"] - costs["served_usd"] == pytest.approx(
        egress + (book().offer("s3_standard").read_per_1000 - r2.read_per_1000) / 1000
    )
