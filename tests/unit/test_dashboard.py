"""functions.api.dashboard: the page's charts from the numbers, escaped, self-contained."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from functions.api.dashboard import DashboardData, render
from shelflife.domain.records import RunKind, RunRecord, RunStatus
from shelflife.domain.settings import TierName
from shelflife.domain.units import human_bytes
from shelflife.services.cleanup import CleanupHealth
from shelflife.services.stats import BucketUsageReport, Recommendation, StoreStats, TierStats

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def data(**changes: object) -> DashboardData:
    tiers = [
        TierStats("temp", "s3", 2, 2048, 1, 10**9, 0.023, 0.0),
        TierStats("hot", "s3", 0, 0, 1, 10**9, 0.023, 0.0),
        TierStats("cold", "b2", 1, 4096, 1, 10**9, 0.006, 0.0),
    ]
    values: dict[str, object] = {
        "stats": StoreStats(tiers, 3, 6144, 0.01, 0.02, 0.01),
        "buckets": [
            BucketUsageReport(TierName.HOT, "s3", "hot-bucket", "full", 96, 100, 1, 96.0, 85, 95)
        ],
        "runs": [
            RunRecord(
                kind=RunKind.LIFECYCLE,
                id="run-1",
                started_at=NOW,
                status=RunStatus.COMPLETED,
                counts={"promoted": 3, "deleted": 1},
            )
        ],
        "cleanup": CleanupHealth("alarm", 2, 0, 0, ("2 dead letters <wait>",), ()),
        "recommendations": [Recommendation("critical", "bucket_full", "bucket <b> is full")],
        "cleanup_threshold_percent": 85,
        "overflow_threshold_percent": 95,
        "generated_at": NOW,
    }
    values.update(changes)
    return DashboardData(**values)  # type: ignore[arg-type]


def test_the_page_loads_nothing_and_runs_nothing() -> None:
    page = render(data())
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)
    assert "default-src 'none'" in page


def test_a_live_page_runs_its_one_script_and_loads_nothing() -> None:
    page = render(data(), refresh_seconds=30)
    assert page.count("<script") == 1
    assert "src=" not in page.split("<script", 1)[1].split("</script>", 1)[0].split(">", 1)[0]
    assert not re.search(r"""(src|href)=["']?https?:""", page)
    assert 'data-refresh="30"' in page
    assert "every 30 s while visible" in page
    # The figures the script swaps are one element, stamped with their time.
    assert '<div id="live" data-generated="2026-' in page


def test_buckets_past_a_threshold_stand_out() -> None:
    buckets = [
        BucketUsageReport(TierName.HOT, "s3", name, "active", used, 1000, 1, used / 10, 85, 95)
        for name, used in (("calm", 849), ("cleaning", 850), ("overflowing", 950))
    ]
    page = render(data(buckets=buckets))
    levels = dict(re.findall(r'data-bucket="([^"]+)"[^>]*data-level="(\w+)"', page))
    assert levels == {"calm": "ok", "cleaning": "cleanup", "overflowing": "overflow"}
    assert page.count('class="label past"') == 2


def test_text_from_records_is_escaped() -> None:
    page = render(data())
    assert "&lt;b&gt;" in page
    assert "<b> is full" not in page
    assert "&lt;wait&gt;" in page


def test_every_chart_carries_its_numbers() -> None:
    page = render(data())
    assert 'data-tier="cold" data-bytes="4096" data-photos="1"' in page
    assert 'data-bucket="hot-bucket" data-tier="hot" data-percent="96.0"' in page
    assert 'data-count="promoted" data-value="3"' in page
    assert 'data-count="deleted" data-value="1"' in page
    assert 'id="cleanup-health" data-status="alarm" data-dead-letters="2"' in page


def test_an_empty_store_says_so() -> None:
    page = render(data(buckets=[], runs=[], recommendations=[], cleanup=None))
    assert "no buckets recorded yet" in page
    assert "no lifecycle runs yet" in page
    assert "nothing to look at" in page


def test_sizes_read_as_people_read_them() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1024, 5 * 1024**2, 3 * 1024**4)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "5.0 MiB",
        "3.0 TiB",
    ]
