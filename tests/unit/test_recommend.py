"""``shelflife recommend``: a measured workload replayed under each configuration."""

from __future__ import annotations

from typing import Any

import pytest

from functions.api.schemas import PricingRequest
from shelflife_tools.recommend import (
    CONFIGURATIONS,
    NothingMeasured,
    pricing,
    recommend,
    workload_of,
)


def measured(**changes: Any) -> dict[str, Any]:
    return {
        "days": 60,
        "uploads": 200,
        "published": 160,
        "published_views": 0,
        "photos": 150,
        "stored_bytes": 150 * 500_000,
        "uploads_per_month": 100.0,
        "publish_rate": 0.8,
        "publish_within_days": 10,
        "views_per_published": 0.0,
        "mean_stored_bytes": 500_000,
        **changes,
    }


def test_without_views_the_defaults_win_and_with_views_r2_serves_for_less() -> None:
    quiet = recommend(measured(), months=6)
    busy = recommend(measured(published_views=1600, views_per_published=10.0), months=6)

    for answer in (quiet, busy):
        names = [row["configuration"] for row in answer["configurations"]]
        assert sorted(names) == sorted(CONFIGURATIONS)
        costs = [row["steady_monthly_usd"] for row in answer["configurations"]]
        assert costs == sorted(costs)
        assert answer["choose"] == names[0]
        assert set(answer["alternatives"]) == {"s3_standard", "s3_intelligent_tiering", "r2", "b2"}
    by_name = {row["configuration"]: row for row in quiet["configurations"]}
    defaults = next(name for name in CONFIGURATIONS if name.startswith("defaults"))
    # Nothing served: HOT on R2 only pays AWS's transfer out for each promotion.
    assert by_name[defaults]["steady_monthly_usd"] < by_name["HotBackend=r2"]["steady_monthly_usd"]
    busy_rows = {row["configuration"]: row for row in busy["configurations"]}
    assert busy_rows["HotBackend=r2"]["egress_usd"] < busy_rows[defaults]["egress_usd"]
    # Serving from R2 when views pay: nothing changes without views, the cheapest with.
    serve = next(name for name in CONFIGURATIONS if name.startswith("ServeBackend=r2"))
    assert by_name[serve]["steady_monthly_usd"] == pytest.approx(
        by_name[defaults]["steady_monthly_usd"], rel=0.02
    )
    assert busy["choose"] == serve
    # What the dashboard keeps: the chosen configuration beside the alternatives and
    # the oracle, as PUT /pricing takes it.
    body = PricingRequest.model_validate(pricing(busy))
    assert set(body.strategies) == {
        f"shelflife ({serve})",
        "s3_standard",
        "s3_intelligent_tiering",
        "r2",
        "b2",
        "oracle",
    }
    assert body.strategies[f"shelflife ({serve})"].steady_monthly_usd == pytest.approx(
        busy_rows[serve]["steady_monthly_usd"]
    )
    assert len(body.strategies["oracle"].monthly_usd) == 6


def test_the_measured_figures_become_the_workload() -> None:
    work = workload_of(measured(views_per_published=2.5), months=12)
    assert (work.months, work.uploads_per_month, work.publish_rate) == (12, 100, 0.8)
    assert (work.publish_within_days, work.views_per_photo) == (10.0, 2.5)
    assert work.mean_size_mb == pytest.approx(500_000 / 1024**2)


def test_nothing_measured_is_a_clear_error() -> None:
    with pytest.raises(NothingMeasured, match="no uploads counted"):
        workload_of(measured(uploads=0, mean_stored_bytes=0), months=12)
