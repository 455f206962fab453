"""``shelflife simulate`` (issue 21, part 2): a workload replayed through the real
services lands where the policy's text says, on the day it says, every strategy is
priced from the same lives, the oracle is never above any of them, and the command
prints what it promises (JSON, a table, a chart) or a clear usage error."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest

from shelflife.domain.economics import MONTH_DAYS, Workload, cost
from shelflife.domain.economics import Pricer as EconomicsPricer
from shelflife.domain.pricebook import book
from shelflife.simulation import (
    STRATEGIES,
    SWEEP_HOUR,
    default_settings,
    replay,
    shape_of,
    strategies,
)
from shelflife_tools.cli import main
from tests.support.corpus import CORPUS

WORK = Workload(months=5, uploads_per_month=30, views_per_photo=3, seed=11)


def next_sweep(day: float) -> float:
    """The first 03:00 run at or after ``day``."""
    run = math.floor(day) + SWEEP_HOUR
    return run if run >= day else run + 1


@pytest.fixture(scope="module")
def replayed():  # type: ignore[no-untyped-def]
    return replay(WORK, [0.3, 0.5])


def test_the_replay_follows_the_policy(replayed) -> None:  # type: ignore[no-untyped-def]
    horizon = WORK.days
    for life in replayed.lives:
        u, stays = life.upload, replayed.stays[life.upload.id]
        assert stays[0].offer == "s3_standard"
        assert stays[0].start == u.uploaded
        # TEMP and HOT both on S3 Standard: promoted in place (no write at all), the
        # same stay goes on.
        if u.published is not None:
            gone = next_sweep(u.published + 7)
            assert life.deleted == (gone if gone < horizon else None), u.id
            assert stays[1:] == [], u.id  # published: never moved
        else:
            assert life.deleted is None  # a year in COLD is past five months
            last_seen = max((u.uploaded, *u.views))
            archive = next_sweep(last_seen + 90)
            # COLD on S3 by default: Glacier Instant Retrieval.
            expected = [("s3_glacier_instant", archive)] if archive < horizon else []
            assert [(s.offer, s.start) for s in stays[1:]] == expected, u.id
    assert sum(a.relabels for a in replayed.activity.values()) == 0


def test_the_activity_counts_what_the_store_did(replayed) -> None:  # type: ignore[no-untyped-def]
    months = replayed.activity.values()
    assert sum(a.uploads for a in months) == len(replayed.lives) == 150
    assert sum(a.deletions for a in months) == sum(
        life.deleted is not None for life in replayed.lives
    )
    assert sum(a.moves for a in months) == sum(len(s) - 1 for s in replayed.stays.values())
    # Views reach the API once a day a photo is viewed (the client keeps its URL).
    assert sum(a.views for a in months) == sum(
        len({int(seen) for seen in life.views_before(WORK.days)}) for life in replayed.lives
    )
    assert sum(a.views for a in months) < sum(
        len(life.views_before(WORK.days)) for life in replayed.lives
    )


def test_each_view_of_a_draft_reaches_the_api() -> None:
    # A draft's URL lasts minutes (url_expiry_seconds), so each view asks for one; a
    # published photo's lasts a day.
    drafts = Workload(months=2, uploads_per_month=10, publish_rate=0, draft_views_per_month=60)
    done = replay(drafts, [0.5])
    seen = [len(life.views_before(drafts.days)) for life in done.lives]
    days = [len({int(v) for v in life.views_before(drafts.days)}) for life in done.lives]
    assert sum(a.draft_views for a in done.activity.values()) == sum(seen) > sum(days)


def test_every_strategy_is_priced_and_the_oracle_is_below_them(replayed) -> None:  # type: ignore[no-untyped-def]
    outcomes = strategies(replayed, WORK.months)
    assert tuple(outcomes) == STRATEGIES
    placement = {name: o.placement.total() for name, o in outcomes.items()}
    for name, usd in placement.items():
        assert placement["oracle"] <= usd + 1e-12, name
    pricer = EconomicsPricer(book())
    horizon = WORK.months * MONTH_DAYS
    mine = sum(
        cost(pricer, life, replayed.stays[life.upload.id], horizon) for life in replayed.lives
    )
    assert placement["shelflife"] == pytest.approx(mine)
    # The store pays its own stack; the one-offer strategies only compression and a sweep.
    fixed = book().stack_fixed_monthly(shape_of(default_settings()))
    assert outcomes["shelflife"].bill.rows["fixed"] == pytest.approx([fixed] * WORK.months)
    assert outcomes["s3_standard"].bill.steady("fixed") < fixed
    assert outcomes["s3_standard_uncompressed"].bill.total("fixed") == 0
    # R2 and B2 from AWS need their keys stored, as the store does (a free SSM
    # SecureString), and the same compressing and deleting.
    assert outcomes["b2"].bill.steady("fixed") == outcomes["s3_standard"].bill.steady("fixed")
    figures = outcomes["b2"].as_json()
    assert len(figures["monthly_usd"]) == WORK.months
    assert set(figures) >= {
        "monthly_usd",
        "steady_monthly_usd",
        "storage_usd",
        "operations_usd",
        "egress_usd",
        "fixed_usd",
    }


def test_simulate_prints_json_a_table_and_a_chart(tmp_path: Path) -> None:
    options = ["--months", "2", "--uploads-per-month", "15", "--views-per-photo", "2"]
    out = io.StringIO()
    assert main(["simulate", *options, "--corpus", str(CORPUS), "--json"], out=out) == 0
    printed = json.loads(out.getvalue())
    assert set(printed["strategies"]) == set(STRATEGIES)
    assert len(printed["strategies"]["shelflife"]["monthly_usd"]) == 2
    assert len(printed["workload"]["compression_ratios"]) >= 5  # measured on the corpus
    chart = tmp_path / "cost.svg"
    out = io.StringIO()
    assert main(["simulate", *options, "--chart", str(chart)], out=out) == 0
    for name in STRATEGIES:
        assert name in out.getvalue()
        assert f'data-strategy="{name}"' in chart.read_text()
    assert chart.read_text().startswith("<svg")


@pytest.mark.parametrize(
    "option",
    [
        ["--months", "0"],
        ["--publish-rate", "1.5"],
        ["--mean-size-mb", "nan"],
        ["--uploads-per-month", "-3"],
        ["--views-per-photo", "-1"],
        ["--serve-backend", "s3"],
    ],
)
def test_a_wrong_option_is_a_usage_error(
    option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", *option, "--json"], out=io.StringIO()) == 2
    error = capsys.readouterr().err
    assert error.startswith("shelflife: ")
    assert option[0] in error
    assert "Traceback" not in error


def test_with_serving_always_published_photos_move_to_r2_when_published() -> None:
    settings = default_settings(serve_published="always")
    done = replay(WORK, [0.3, 0.5], settings=settings)
    served = 0
    for life in done.lives:
        u, stays = life.upload, done.stays[life.upload.id]
        if u.published is None or u.published >= WORK.days:
            continue
        # At once: the API asks the lifecycle as it publishes, not at the next sweep.
        assert [s.offer for s in stays][-1] == "r2_standard", u.id
        assert stays[-1].start == u.published, u.id
        served += 1
    assert served > 0
    transfers = sum(a.transfers for a in done.activity.values())
    serves = sum(a.serves for a in done.activity.values())
    assert transfers == served == serves
    priced = strategies(done, WORK.months, shape=shape_of(settings))
    assert priced["oracle"].bill.steady() <= priced["shelflife"].bill.steady()
    plain = strategies(replay(WORK, [0.3, 0.5], settings=default_settings(serve=None)), WORK.months)
    # Views are few here (3 a photo): serving them from R2 still pays its transfer.
    assert priced["shelflife"].bill.total("egress") < plain["shelflife"].bill.total("egress")


def test_simulate_prices_the_store_without_r2_when_asked() -> None:
    options = ["--months", "2", "--uploads-per-month", "15", "--views-per-photo", "2"]
    figures = {}
    for backend in ("r2", "none"):
        out = io.StringIO()
        command = ["simulate", *options, "--serve-backend", backend, "--json"]
        assert main(command, out=out) == 0
        figures[backend] = json.loads(out.getvalue())["strategies"]
    # The same lives: the one-offer strategies agree; the store differs only in where
    # it may serve from (too few publishes here for "auto" to move any).
    assert figures["r2"]["s3_standard"] == figures["none"]["s3_standard"]
    assert figures["r2"]["shelflife"]["steady_monthly_usd"] == pytest.approx(
        figures["none"]["shelflife"]["steady_monthly_usd"]
    )


def test_simulate_prices_with_a_changes_file(tmp_path: Path) -> None:
    """``--prices``: a what-if. The store's table writes tripled cost the store more;
    the one-offer strategies, which do not write that table, cost the same."""
    options = ["--months", "2", "--uploads-per-month", "15", "--json"]
    changes = tmp_path / "changes.toml"
    upload = book().stack.upload.table_writes
    changes.write_text(f"[stack]\nupload = {{ table_writes = {upload * 3} }}\n")
    figures = {}
    for extra in ([], ["--prices", str(changes)]):
        out = io.StringIO()
        assert main(["simulate", *options, *extra], out=out) == 0
        figures[bool(extra)] = json.loads(out.getvalue())["strategies"]
    assert figures[True]["s3_standard"] == figures[False]["s3_standard"]
    more = (
        figures[True]["shelflife"]["operations_usd"] - figures[False]["shelflife"]["operations_usd"]
    )
    assert more > 0
    assert figures[True]["oracle"]["operations_usd"] > figures[False]["oracle"]["operations_usd"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "changes.toml"),
        ("[stack\n", "not TOML"),
        ("[stack]\nupload = { table_writes = -1 }\n", "stack.upload.table_writes"),
    ],
)
def test_a_changes_file_the_book_refuses_is_a_usage_error(
    tmp_path: Path, text: str | None, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    changes = tmp_path / "changes.toml"
    if text is not None:
        changes.write_text(text)
    command = ["simulate", "--months", "1", "--prices", str(changes), "--json"]
    assert main(command, out=io.StringIO()) == 2
    error = capsys.readouterr().err
    assert error.startswith("shelflife: --prices: ")
    assert says in error
    assert "Traceback" not in error
