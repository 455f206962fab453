"""Economics benchmark (issue 21): the reference workload of the design replayed through
the store's real services (``shelflife.simulation``) with 0, 10 and 100 views per
published photo, every strategy priced from the price book, the targets checked.

    make economics        (or: .venv/bin/python -m bench.economics [--months 24])

The reference workload: 1,000 uploads a month of 2 MB on average (log-normal), 80 %
published within 10 days of upload, 24 months; compression ratios measured in this run
by ``compress`` on the corpus's photographs. Targets, on the steady monthly cost (the
mean of the last 12 months), all costs included: ``shelflife`` at most every one-offer
strategy (S3 Standard, S3 Intelligent-Tiering, R2, B2, each compressed with the same
deletions) and at most 1.10x ``oracle``. Exits 1 when a target is not met.

``shelflife`` is the template's defaults with ``ServeBackend=r2``: published photos are
served from R2 once their measured views pay, which needs an R2 account, as the ``r2``
and ``b2`` strategies need theirs. Without one (``ServeBackend=none``, the template's
default) the store keeps every byte on AWS: ``shelflife simulate`` prices that too
(``recommend`` lists both).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from shelflife.domain.economics import Workload
from shelflife.domain.pricebook import book
from shelflife_tools.simulate import fixed_bill, measured_ratios, report, simulate

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
VIEWS = (0.0, 10.0, 100.0)
ONE_OFFER = ("s3_standard", "s3_intelligent_tiering", "r2", "b2")
ORACLE_MARGIN = 1.10


def scenario(work: Workload, ratios: list[float]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    outcomes = simulate(work, ratios)
    return time.perf_counter() - started, report(work, ratios, outcomes)


def verdicts(strategies: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """(what, shelflife's figure, the bound, met) for every target."""
    mine = strategies["shelflife"]["steady_monthly_usd"]
    out = [
        (f"<= {name}", mine, strategies[name]["steady_monthly_usd"], False) for name in ONE_OFFER
    ]
    bound = ORACLE_MARGIN * strategies["oracle"]["steady_monthly_usd"]
    out.append((f"<= {ORACLE_MARGIN:.2f} x oracle", mine, bound, False))
    return [(what, m, b, m <= b + 1e-12) for what, m, b, _ in out]


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--months", type=int, default=24)
    options.add_argument("--uploads-per-month", type=int, default=1000)
    options.add_argument("--json", help="also write every scenario's figures to this file")
    args = options.parse_args()
    ratios = measured_ratios(CORPUS)
    if not ratios:
        sys.exit(f"no photos in {CORPUS}: the corpus lives in ../shared/corpus")
    base = Workload(months=args.months, uploads_per_month=args.uploads_per_month)
    print(
        f"Reference workload: {base.uploads_per_month} uploads a month of {base.mean_size_mb} MB, "
        f"{base.publish_rate:.0%} published, {base.months} months; compressed / uploaded "
        f"measured on {len(ratios)} corpus photos: "
        f"{min(ratios):.2f}-{max(ratios):.2f} (mean {sum(ratios) / len(ratios):.2f})."
    )
    print(f"List prices (price book checked {book().transfer.checked}), no free allowance.")
    print(fixed_bill())
    print(
        "shelflife: the defaults with ServeBackend=r2 (published photos served from R2 once "
        "their measured views pay; an R2 account, as the r2 and b2 strategies assume).\n"
    )
    works = [replace(base, views_per_photo=views) for views in VIEWS]
    with ProcessPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(scenario, works, [ratios] * len(works)))
    failed = 0
    everything = {}
    for work, (seconds, result) in zip(works, runs, strict=True):
        strategies = result["strategies"]
        everything[str(work.views_per_photo)] = result
        print(
            f"== {work.views_per_photo:g} views per published photo (replayed in {seconds:.0f} s)"
        )
        width = max(len(name) for name in strategies)
        print(
            f"{'strategy':{width}}  {'a month':>9}  {'storage':>8}  {'operations':>10}  "
            f"{'egress':>8}  {'fixed':>8}  {'no fixed':>9}"
        )
        for name, f in strategies.items():
            print(
                f"{name:{width}}  {f['steady_monthly_usd']:9.4f}  {f['storage_usd']:8.4f}  "
                f"{f['operations_usd']:10.4f}  {f['egress_usd']:8.4f}  {f['fixed_usd']:8.4f}  "
                f"{f['placement_steady_monthly_usd']:9.4f}"
            )
        for what, mine, bound, met in verdicts(strategies):
            failed += not met
            print(
                f"  shelflife {what}: ${mine:.4f} vs ${bound:.4f} "
                f"({mine / bound if bound else float('inf'):.2f}x)  {'met' if met else 'NOT MET'}"
            )
        print()
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=2) + "\n")
    print("every target met" if not failed else f"{failed} target(s) not met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
