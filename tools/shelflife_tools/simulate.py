"""``shelflife simulate``: a workload replayed through the store's real services and
priced for every strategy (``shelflife.simulation``): a table, an SVG chart of monthly
cost by strategy, or ``--json``."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from shelflife.domain.charts import cost_chart
from shelflife.domain.economics import MONTH_DAYS, Workload
from shelflife.domain.errors import ConfigurationError, RejectedImage
from shelflife.domain.imaging import compress
from shelflife.domain.pricebook import PriceBook, book, read_changes
from shelflife.simulation import (
    MEASURED_RATIOS,
    STRATEGIES,
    Outcome,
    default_settings,
    replay,
    shape_of,
    strategies,
)
from shelflife_tools.console import bar, table

# The sets of the corpus that are photographs (the others are edge cases).
PHOTO_SETS = ("photos", "camera")


class BadOption(ValueError):
    pass


def measured_ratios(corpus: Path, sets: Sequence[str] = PHOTO_SETS) -> list[float]:
    """Stored / uploaded size of every photo of ``sets``, as ``compress`` makes it."""
    ratios = []
    for folder in sets:
        for path in sorted((corpus / folder).glob("*")):
            if not path.is_file():
                continue
            data = path.read_bytes()
            try:
                ratios.append(len(compress(data).data) / len(data))
            except RejectedImage:
                continue  # a photo the store refuses is not stored: no ratio
    return ratios


def workload(args: argparse.Namespace) -> Workload:
    """The options as a workload, each checked (a wrong one is a usage error)."""
    checks = (
        ("--months", args.months, 1 <= args.months <= 120),
        ("--uploads-per-month", args.uploads_per_month, 1 <= args.uploads_per_month <= 100_000),
        ("--mean-size-mb", args.mean_size_mb, 0.01 <= args.mean_size_mb <= 200),
        ("--publish-rate", args.publish_rate, 0 <= args.publish_rate <= 1),
        ("--views-per-photo", args.views_per_photo, 0 <= args.views_per_photo <= 100_000),
        (
            "--draft-views-per-month",
            args.draft_views_per_month,
            0 <= args.draft_views_per_month <= 1000,
        ),
    )
    for name, value, ok in checks:
        if not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise BadOption(f"{name} {value} is out of range (see shelflife simulate --help)")
    if getattr(args, "serve_backend", "r2") not in ("r2", "none"):
        raise BadOption(f"--serve-backend {args.serve_backend!r}: r2 or none")
    return Workload(
        months=args.months,
        uploads_per_month=args.uploads_per_month,
        mean_size_mb=args.mean_size_mb,
        publish_rate=args.publish_rate,
        views_per_photo=args.views_per_photo,
        draft_views_per_month=args.draft_views_per_month,
        seed=args.seed,
    )


def simulate(
    work: Workload,
    ratios: Sequence[float],
    *,
    progress: TextIO | None = None,
    serve_backend: str = "r2",
    prices: PriceBook | None = None,
) -> dict[str, Outcome]:
    """Every strategy on ``work``; ``shelflife`` with published photos served from R2
    when their views pay (``serve_backend="none"``: every byte on AWS)."""

    def tick(day: int, days: int) -> None:
        if progress is not None and (day % MONTH_DAYS == 0 or day == days):
            bar(day // MONTH_DAYS, days // MONTH_DAYS, "months replayed", progress)

    settings = default_settings() if serve_backend == "r2" else default_settings(serve=None)
    done = replay(work, ratios, settings=settings, prices=prices, progress=tick)
    return strategies(done, work.months, prices, shape=shape_of(settings))


def report(
    work: Workload, ratios: Sequence[float], outcomes: Mapping[str, Outcome]
) -> dict[str, object]:
    return {
        "workload": {
            "months": work.months,
            "uploads_per_month": work.uploads_per_month,
            "mean_size_mb": work.mean_size_mb,
            "publish_rate": work.publish_rate,
            "views_per_photo": work.views_per_photo,
            "draft_views_per_month": work.draft_views_per_month,
            "seed": work.seed,
            "compression_ratios": [round(r, 3) for r in ratios],
        },
        "prices": "list prices of the price book, no free allowance; fixed = the stack's own "
        "monthly costs (one-offer strategies: only a daily deletion sweep)",
        "strategies": {name: outcome.as_json() for name, outcome in outcomes.items()},
    }


def print_table(outcomes: Mapping[str, Outcome], out: TextIO) -> None:
    """Steady monthly cost (the last 12 months' mean) by strategy and category, and the
    ratio to the cheapest one-offer strategy."""
    figures = {name: outcome.as_json() for name, outcome in outcomes.items()}
    baseline = min(
        figures[n]["steady_monthly_usd"]
        for n in ("s3_standard", "s3_intelligent_tiering", "r2", "b2")
    )
    rows = []
    for name in STRATEGIES:
        f = figures[name]
        rows.append(
            [
                name,
                f"${f['steady_monthly_usd']:.4f}",
                f"${f['storage_usd']:.4f}",
                f"${f['operations_usd']:.4f}",
                f"${f['egress_usd']:.4f}",
                f"${f['fixed_usd']:.4f}",
                f"${f['placement_steady_monthly_usd']:.4f}",
                f"{f['steady_monthly_usd'] / baseline:.2f}x" if baseline else "-",
            ]
        )
    table(
        rows,
        [
            "strategy",
            "a month",
            "storage",
            "operations",
            "egress",
            "fixed",
            "without fixed",
            "vs best one-offer",
        ],
        out,
    )


def chart(outcomes: Mapping[str, Outcome], title: str) -> str:
    """Monthly cost by strategy as an SVG line chart (``shelflife.domain.charts``)."""
    series = {name: outcomes[name].bill.monthly for name in STRATEGIES}
    steady = {name: outcomes[name].bill.steady() for name in STRATEGIES}
    return cost_chart(series, title, steady=steady) + "\n"


def fixed_bill(prices: PriceBook | None = None) -> str:
    """The stack's own fixed monthly bill as deployed by default, and with
    Monitoring=full."""
    shape = shape_of(default_settings())
    prices = prices or book()
    lean = prices.stack_fixed_monthly(shape)
    full = prices.stack_fixed_monthly(replace(shape, full_monitoring=True))
    return (
        f"The stack's own fixed bill: ${lean:.4f} a month as deployed by default "
        f"(Monitoring=lean), ${full:.2f} with Monitoring=full."
    )


def add_arguments(command: argparse.ArgumentParser) -> None:
    defaults = Workload()
    command.add_argument("--months", type=int, default=defaults.months)
    command.add_argument("--uploads-per-month", type=int, default=defaults.uploads_per_month)
    command.add_argument(
        "--mean-size-mb", type=float, default=defaults.mean_size_mb, help="mean upload size"
    )
    command.add_argument("--publish-rate", type=float, default=defaults.publish_rate)
    command.add_argument(
        "--views-per-photo",
        type=float,
        default=defaults.views_per_photo,
        help="views of a published photo in its first week",
    )
    command.add_argument(
        "--draft-views-per-month", type=float, default=defaults.draft_views_per_month
    )
    command.add_argument("--seed", type=int, default=defaults.seed)
    command.add_argument(
        "--serve-backend",
        default="r2",
        help="where the shelflife strategy serves published photos from once their views "
        "pay: r2 (ServeBackend=r2, an R2 account; the default here) or none (every byte "
        "on AWS, the template's default)",
    )
    command.add_argument(
        "--prices",
        metavar="FILE",
        help="a TOML file of changes to the price book, merged over it table by table "
        "(e.g. [stack] upload = { table_writes = 11 }): what-ifs, or your own prices. "
        "The replay and every strategy are priced with it; the store's own decisions "
        "still read the layer's book, as a deployment does",
    )
    command.add_argument(
        "--corpus",
        default="../shared/corpus",
        help="measure compression on this corpus's photos (default ../shared/corpus; "
        "where it is missing, the ratios measured on it at release)",
    )
    command.add_argument(
        "--chart",
        default="simulation.svg",
        help="where to write the chart (default simulation.svg)",
    )


def prices_of(args: argparse.Namespace) -> PriceBook:
    """The layer's book, with the changes of ``--prices`` (a usage error if refused)."""
    if not getattr(args, "prices", None):
        return book()
    try:
        return read_changes(Path(args.prices))
    except ConfigurationError as e:
        raise BadOption(f"--prices: {e}") from None


def run(args: argparse.Namespace, out: TextIO, *, as_json: bool) -> int:
    work = workload(args)
    prices = prices_of(args)
    corpus = Path(args.corpus)
    ratios = measured_ratios(corpus) if corpus.is_dir() else []
    ratios = ratios or list(MEASURED_RATIOS)
    outcomes = simulate(
        work,
        ratios,
        progress=None if as_json else out,
        serve_backend=args.serve_backend,
        prices=prices,
    )
    if as_json:
        json.dump(report(work, ratios, outcomes), out, indent=2)
        out.write("\n")
        return 0
    print_table(outcomes, out)
    out.write(
        f"\nSteady = the mean of months {max(1, work.months - 11)}-{work.months}; list "
        f"prices, no free allowance. {fixed_bill(prices)}\n"
    )
    title = (
        f"Monthly cost, {work.uploads_per_month} uploads a month of {work.mean_size_mb} MB, "
        f"{work.views_per_photo:g} views per published photo"
    )
    Path(args.chart).write_text(chart(outcomes, title))
    out.write(f"Chart: {args.chart}\n")
    return 0
