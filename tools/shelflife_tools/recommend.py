"""``shelflife recommend``: the deployment's measured workload (``GET /workload``)
replayed through the store's real services under each configuration it can choose
(``shelflife.simulation``), priced from the price book, cheapest first.

Measured: uploads a month, the share published and how old photos are then, view-days
of published photos through the API, the mean stored size. A view-day is a lower bound
on views (a client keeps a URL for the day), so serving costs are a lower bound too.
Sizes are stored sizes: the replay does not compress them again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TextIO

from shelflife.domain.economics import MB, Workload
from shelflife.simulation import default_settings, replay, shape_of, strategies
from shelflife_tools.console import table

# What a deployment chooses, as template parameters or settings, and what each means
# for the replay's settings.
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults (HOT on S3, COLD on S3 Glacier IR, learned archive day, nothing on R2)": {
        "serve": None
    },
    "ServeBackend=r2 (published photos served from R2 when their views pay)": {},
    "HotBackend=r2": {"hot": {"backend": "r2"}, "serve": None},
    "ColdBackend=b2": {"cold": {"backend": "b2"}, "serve": None},
    "SHELFLIFE_LEARNED_ARCHIVE=false (archive after hot_idle_days)": {
        "learned_archive": False,
        "serve": None,
    },
}
ONE_OFFER = ("s3_standard", "s3_intelligent_tiering", "r2", "b2")


class NothingMeasured(ValueError):
    pass


def workload_of(measured: Mapping[str, Any], months: int) -> Workload:
    """The measured figures as the simulator's workload."""
    if not measured.get("uploads") or not measured.get("mean_stored_bytes"):
        raise NothingMeasured(
            f"nothing measured in the last {measured.get('days')} days (no uploads counted): "
            "recommend needs the deployment's own uploads"
        )
    return Workload(
        months=months,
        uploads_per_month=max(1, round(measured["uploads_per_month"])),
        mean_size_mb=max(0.01, measured["mean_stored_bytes"] / MB),
        publish_rate=measured["publish_rate"],
        publish_within_days=float(measured.get("publish_within_days") or 10),
        views_per_photo=measured["views_per_published"],
    )


def _price(args: tuple[Workload, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    work, overrides = args
    settings = default_settings(**json.loads(json.dumps(overrides)))
    done = replay(work, [1.0], settings=settings)
    outcomes = strategies(done, work.months, shape=shape_of(settings))
    return {name: outcome.as_json() for name, outcome in outcomes.items()}


def recommend(measured: Mapping[str, Any], months: int) -> dict[str, Any]:
    """Each configuration's steady monthly bill on the measured workload, cheapest
    first, and the one-offer alternatives priced on the same replay."""
    work = workload_of(measured, months)
    jobs = [(work, overrides) for overrides in CONFIGURATIONS.values()]
    with ProcessPoolExecutor(max_workers=2) as pool:
        priced = list(pool.map(_price, jobs))
    rows: list[dict[str, Any]] = [
        {"configuration": name, **figures["shelflife"]}
        for name, figures in zip(CONFIGURATIONS, priced, strict=True)
    ]
    rows.sort(key=lambda row: float(row["steady_monthly_usd"]))
    chosen = rows[0]["configuration"]
    return {
        "measured": dict(measured),
        "configurations": rows,
        "alternatives": {name: priced[0][name] for name in ONE_OFFER},
        "oracle": priced[list(CONFIGURATIONS).index(chosen)]["oracle"],
        "choose": chosen,
    }


def pricing(answer: Mapping[str, Any]) -> dict[str, Any]:
    """What ``PUT /pricing`` keeps for the dashboard's chart: the recommended
    configuration's monthly cost beside the one-offer alternatives and the oracle."""
    chosen = answer["configurations"][0]
    series = {
        f"shelflife ({answer['choose']})": chosen,
        **answer["alternatives"],
        "oracle": answer["oracle"],
    }
    return {
        "choose": answer["choose"],
        "measured": {
            key: value
            for key, value in answer["measured"].items()
            if value is None or isinstance(value, int | float)
        },
        "strategies": {
            name: {
                "monthly_usd": list(figures["monthly_usd"]),
                "steady_monthly_usd": figures["steady_monthly_usd"],
            }
            for name, figures in series.items()
        },
    }


def print_recommendation(answer: Mapping[str, Any], out: TextIO) -> None:
    m = answer["measured"]
    out.write(
        f"measured over {m['days']} days: {m['uploads_per_month']:g} uploads a month, "
        f"{m['publish_rate']:.0%} published (99 % within "
        f"{m['publish_within_days'] or '?'} days), {m['views_per_published']:g} view-days "
        f"per published photo, {m['mean_stored_bytes'] / MB:.2f} MB stored per photo\n"
    )
    rows = [
        [
            row["configuration"],
            f"{row['steady_monthly_usd']:.4f}",
            f"{row['storage_usd']:.4f}",
            f"{row['operations_usd']:.4f}",
            f"{row['egress_usd']:.4f}",
            f"{row['fixed_usd']:.4f}",
        ]
        for row in answer["configurations"]
    ]
    rows += [
        [f"(one offer: {name})", f"{f['steady_monthly_usd']:.4f}", "", "", "", ""]
        for name, f in answer["alternatives"].items()
    ]
    table(rows, ["configuration", "USD a month", "storage", "operations", "egress", "fixed"], out)
    out.write(f"choose: {answer['choose']}\n")
