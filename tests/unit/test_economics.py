"""What keeping photos costs (issue 21, part 2): one image priced by hand down each path
(an offer's storage, its minimum duration and size, Intelligent-Tiering's tiers and
fee, moves, views, AWS data transfer out), the oracle never above any strategy, and the
stack's own bill. Every expected figure is written out from the book's prices."""

from __future__ import annotations

import pytest

from shelflife.domain.economics import (
    GB,
    MONTH_DAYS,
    ONE_OFFER,
    UNCOMPRESSED,
    Activity,
    Bill,
    Life,
    Pricer,
    Stay,
    Upload,
    Workload,
    cost,
    draw,
    one_offer,
    oracle,
    pipeline_bill,
    price,
    record_days,
    stack_bill,
)
from shelflife.domain.pricebook import Shape, book

MB = 1024**2
HORIZON = 24 * MONTH_DAYS


def image(
    size: int = 2 * MB,
    *,
    uploaded: float = 0.0,
    deleted: float | None = None,
    published: float | None = None,
    views: tuple[float, ...] = (),
) -> Life:
    return Life(Upload("u1", uploaded, 3 * size, size, published, views), deleted)


def bill_of(life: Life, stays: list[Stay]) -> Bill:
    bill = Bill(24)
    price(Pricer(book()), life, stays, HORIZON, bill)
    return bill


def ingest_ops(target: str) -> float:
    """The client's PUT to the upload bucket, ingest's GET, its write to ``target``."""
    s3 = book().offer("s3_standard")
    return (
        s3.write_per_1000 / 1000
        + s3.read_per_1000 / 1000
        + book().offer(target).write_per_1000 / 1000
    )


def test_a_month_on_s3_standard() -> None:
    s3 = book().offer("s3_standard")
    bill = bill_of(image(deleted=30.0), [Stay("s3_standard", 0.0)])
    assert bill.total("storage") == pytest.approx(s3.storage_per_gb_month * 2 / 1024)
    assert bill.total("operations") == pytest.approx(ingest_ops("s3_standard"))
    assert bill.total("egress") == 0
    assert bill.rows["storage"][0] == pytest.approx(bill.total("storage"))


def test_writing_to_b2_from_aws_pays_transfer_out_and_b2_bills_no_upload() -> None:
    b2, transfer = book().offer("b2"), book().transfer
    bill = bill_of(image(deleted=60.0), [Stay("b2", 0.0)])
    assert bill.total("egress") == pytest.approx(transfer.aws_out_per_gb * 2 / 1024)
    assert bill.total("storage") == pytest.approx(b2.storage_per_gb_month * 2 * 2 / 1024)
    assert bill.total("operations") == pytest.approx(ingest_ops("b2"))


def test_glacier_instant_charges_its_minimum_duration_and_size() -> None:
    glacier = book().offer("s3_glacier_instant")
    small = 10_000  # billed as 128 KB
    bill = bill_of(image(small, deleted=10.0), [Stay("s3_glacier_instant", 0.0)])
    assert glacier.min_object_bytes == 131072
    assert bill.total("storage") == pytest.approx(
        glacier.storage_per_gb_month * 131072 / GB * 90 / 30
    )
    # Paid at the deletion: ten days in the first month, the rest on day 10.
    assert bill.rows["storage"][1] == 0


def test_intelligent_tiering_moves_down_its_tiers_and_charges_monitoring() -> None:
    it = book().offer("s3_intelligent_tiering")
    assert it.infrequent_per_gb_month
    assert it.archive_instant_per_gb_month
    assert it.monitoring_per_1000_objects_month
    gb = 2 / 1024
    bill = bill_of(image(deleted=200.0), [Stay("s3_intelligent_tiering", 0.0)])
    expected = gb * (
        it.storage_per_gb_month * 1
        + it.infrequent_per_gb_month * 2
        + it.archive_instant_per_gb_month * 110 / 30
    )
    expected += it.monitoring_per_1000_objects_month / 1000 * 200 / 30
    assert bill.total("storage") == pytest.approx(expected)


def test_a_view_sends_intelligent_tiering_back_to_frequent() -> None:
    it = book().offer("s3_intelligent_tiering")
    assert it.infrequent_per_gb_month
    assert it.monitoring_per_1000_objects_month
    gb = 2 / 1024
    life = image(deleted=80.0, views=(40.0,))
    bill = bill_of(life, [Stay("s3_intelligent_tiering", 0.0)])
    # Frequent 0-30, Infrequent 30-40, Frequent 40-70, Infrequent 70-80.
    expected = gb * (it.storage_per_gb_month * 60 + it.infrequent_per_gb_month * 20) / 30
    expected += it.monitoring_per_1000_objects_month / 1000 * 80 / 30
    assert bill.total("storage") == pytest.approx(expected)
    assert bill.total("egress") == pytest.approx(it.egress_per_gb * gb)


def test_under_128_kb_intelligent_tiering_is_frequent_and_unmonitored() -> None:
    it = book().offer("s3_intelligent_tiering")
    bill = bill_of(image(100_000, deleted=200.0), [Stay("s3_intelligent_tiering", 0.0)])
    assert bill.total("storage") == pytest.approx(it.storage_per_gb_month * 100_000 / GB * 200 / 30)


def test_a_move_to_b2_and_views_there() -> None:
    s3, b2, transfer = book().offer("s3_standard"), book().offer("b2"), book().transfer
    gb = 2 / 1024
    life = image(deleted=100.0, views=(5.0, 50.0, 60.0))
    bill = bill_of(life, [Stay("s3_standard", 0.0), Stay("b2", 30.0)])
    assert bill.total("storage") == pytest.approx(
        gb * (s3.storage_per_gb_month * 30 + b2.storage_per_gb_month * 70) / 30
    )
    assert bill.total("egress") == pytest.approx(
        transfer.aws_out_per_gb * gb  # the move
        + s3.egress_per_gb * gb  # the view on day 5
        + 2 * b2.egress_per_gb * gb  # two views on B2
    )
    assert bill.total("operations") == pytest.approx(
        ingest_ops("s3_standard")
        + s3.read_per_1000 / 1000
        + b2.write_per_1000 / 1000  # the move
        + s3.read_per_1000 / 1000
        + 2 * b2.read_per_1000 / 1000
    )


def test_a_view_on_r2_is_free_of_egress() -> None:
    r2 = book().offer("r2_standard")
    life = image(deleted=10.0, views=(1.0, 2.0))
    bill = bill_of(life, [Stay("r2_standard", 0.0)])
    assert r2.egress_per_gb == 0
    assert bill.total("egress") == pytest.approx(book().transfer.aws_out_per_gb * 2 / 1024)


def test_uncompressed_keeps_the_original_on_s3_standard() -> None:
    s3 = book().offer("s3_standard")
    life = image(MB, deleted=30.0)  # its original: 3 MB
    bill = one_offer(Pricer(book()), [life], UNCOMPRESSED, 24)
    assert bill.total("storage") == pytest.approx(s3.storage_per_gb_month * 3 / 1024)
    assert bill.total("operations") == pytest.approx(s3.write_per_1000 / 1000)


def test_kept_past_the_horizon_pays_no_minimum_duration() -> None:
    glacier = book().offer("s3_glacier_instant")
    life = image(MB, uploaded=HORIZON - 3.0)
    bill = bill_of(life, [Stay("s3_glacier_instant", HORIZON - 3.0)])
    assert bill.total("storage") == pytest.approx(glacier.storage_per_gb_month / 1024 * 3 / 30)


def test_steady_is_the_mean_of_the_last_twelve_months() -> None:
    bill = Bill(24)
    for month in range(24):
        bill.add("storage", month * MONTH_DAYS + 1, float(month))
    assert bill.steady() == pytest.approx(sum(range(12, 24)) / 12)
    assert bill.steady("egress") == 0


def test_stays_must_start_at_the_upload() -> None:
    with pytest.raises(ValueError, match="starts at the upload"):
        bill_of(image(), [Stay("s3_standard", 1.0)])


def small_workload(views: float, seed: int) -> list[Life]:
    """Two months of 40 uploads, deleted as the default policy would: published ones
    7 days after publishing, drafts a year after 90 days (past the horizon here)."""
    workload = Workload(
        months=6,
        uploads_per_month=40,
        views_per_photo=views,
        draft_views_per_month=0.5,
        seed=seed,
    )
    lives = []
    for upload in draw(workload, [0.2, 0.35, 0.6]):
        deleted = None if upload.published is None else upload.published + 7
        lives.append(Life(upload, deleted))
    return lives


@pytest.mark.parametrize(("views", "seed"), [(0.0, 1), (10.0, 2), (100.0, 3)])
def test_the_oracle_is_never_above_any_strategy(views: float, seed: int) -> None:
    pricer = Pricer(book())
    lives = small_workload(views, seed)
    # A strategy that moves between the oracle's choice points: S3, then B2 on day 2.
    moved = {
        life.upload.id: [
            Stay("s3_standard", life.upload.uploaded),
            Stay("b2", life.upload.uploaded + 2),
        ]
        for life in lives
    }
    best, chosen = oracle(pricer, lives, 6, also=moved)
    for life in lives:
        mine = cost(pricer, life, chosen[life.upload.id], 6 * MONTH_DAYS)
        for offer in [*book().offers]:
            assert (
                mine
                <= cost(pricer, life, [Stay(offer, life.upload.uploaded)], 6 * MONTH_DAYS) + 1e-15
            )
        assert mine <= cost(pricer, life, moved[life.upload.id], 6 * MONTH_DAYS) + 1e-15
    for offer in ONE_OFFER:
        assert best.total() <= one_offer(pricer, lives, offer, 6).total() + 1e-12


def test_the_oracle_moves_a_draft_it_knows_is_kept_to_cheap_storage() -> None:
    pricer = Pricer(book())
    draft = image(deleted=455.0)
    _, chosen = oracle(pricer, [draft], 24)
    cheapest = chosen["u1"]
    assert cost(pricer, draft, cheapest, HORIZON) < cost(
        pricer, draft, [Stay("s3_intelligent_tiering", 0.0)], HORIZON
    )
    assert cheapest[-1].offer in {"s3_glacier_instant", "b2"}


def test_the_workload_is_drawn_from_its_seed() -> None:
    workload = Workload(months=2, uploads_per_month=50, publish_rate=0.5, seed=7)
    first, again = draw(workload, [0.3]), draw(workload, [0.3])
    assert first == again
    assert len(first) == 100
    assert all(0 <= u.uploaded < 60 for u in first)
    assert 25 <= sum(u.published is not None for u in first) <= 75
    assert all(u.size == round(u.original * 0.3) for u in first if u.original * 0.3 > 256)
    with pytest.raises(ValueError, match="ratios"):
        draw(workload, [])


def test_the_stack_pays_its_fixed_bill_every_month_and_its_work_per_event() -> None:
    prices = book()
    activity = {0: Activity(uploads=10, views=4, moves=2, deletions=1, publishes=3)}
    runs = prices.stack.capacity.per_month * prices.compute_cost(prices.stack.capacity)
    runs += prices.stack.lifecycle.per_month * prices.compute_cost(prices.stack.lifecycle)
    # Lean (the template's default): no secret, metric, trace or alarm; only its runs.
    assert stack_bill(prices, activity, 2).rows["fixed"] == pytest.approx([runs, runs])
    full = Shape(credentials=True, full_monitoring=True)
    items = sum(item.monthly_usd * item.count for item in prices.fixed.values())
    traced = prices.compute.xray_per_trace * (
        prices.stack.capacity.per_month + prices.stack.lifecycle.per_month
    )
    assert items > 10 * runs
    bill = stack_bill(prices, activity, 2, full)
    assert bill.rows["fixed"] == pytest.approx([items + runs + traced] * 2)
    bill = stack_bill(prices, activity, 2)
    use = prices.stack
    assert bill.rows["operations"][0] == pytest.approx(
        10 * prices.compute_cost(use.upload)
        + 4 * prices.compute_cost(use.view)
        + 2 * prices.compute_cost(use.move)
        + prices.compute_cost(use.deletion)
        + 3 * prices.compute_cost(use.publish)
        # The audit trail: an entry per upload, move, publish and deletion; views add none.
        + (10 + 2 + 1 + 3) * prices.compute_cost(use.audit_entry)
    )
    assert bill.rows["operations"][1] == 0
    # Each entry is kept for the retention, billed in the month it is written.
    per_day = prices.compute.table_storage_per_gb_month / 30 / 1024**3
    assert bill.rows["storage"][0] == pytest.approx(
        16 * use.audit_retention_days * use.audit_entry_bytes * per_day
    )
    # The alternatives' pipeline: compression, publishing and deletions on their leanest
    # record, a daily sweep, no more.
    # The R2/B2 keys: an SSM SecureString, free (a Secrets Manager secret was $0.40).
    keys = [i for i in prices.fixed.values() if i.when == "credentials"]
    assert keys
    assert sum(i.monthly_usd * i.count for i in keys) == 0
    keyed = pipeline_bill(prices, activity, 2, credentials=True)
    assert keyed.rows["fixed"] == pipeline_bill(prices, activity, 2).rows["fixed"]
    pipeline = pipeline_bill(prices, activity, 2)
    assert pipeline.rows["fixed"][0] == pytest.approx(
        runs - prices.stack.capacity.per_month * prices.compute_cost(prices.stack.capacity)
    )
    lean = prices.pipeline
    assert pipeline.rows["operations"][0] == pytest.approx(
        10 * prices.compute_cost(lean.upload)
        + 3 * prices.compute_cost(lean.publish)
        + prices.compute_cost(lean.deletion)
    )
    assert lean.upload.table_writes < use.upload.table_writes


def test_a_promotion_in_place_costs_one_records_write_priced_by_hand() -> None:
    # Issue 21: TEMP and HOT on one offer. The lifecycle writes the record (its write
    # units as test_table_units measures them, the due index read, a short share of an
    # invocation) and copies nothing.
    prices = book()
    c = prices.compute
    relabel = prices.stack.relabel
    assert (relabel.table_writes, relabel.table_reads, relabel.api_requests) == (4, 1, 0)
    by_hand = (
        c.lambda_per_request
        + 0.025 * c.lambda_arm64_per_gb_second
        + 4 * c.table_write
        + c.table_read
    )
    assert relabel.gb_seconds == 0.025
    assert prices.compute_cost(relabel) == pytest.approx(by_hand)
    bill = stack_bill(prices, {0: Activity(relabels=840)}, 1)
    assert bill.rows["operations"][0] == pytest.approx(840 * by_hand)
    # Against a copy: a move's work (its claim and flip, longer), and S3's COPY and the
    # source's deletion beside it.
    assert prices.compute_cost(prices.stack.move) > 2 * by_hand


def test_a_published_photo_served_from_r2_priced_by_hand() -> None:
    # Issue 21: stored on S3 Standard, moved to R2 when published on day 3 (AWS's
    # transfer out once), viewed there on days 4 and 5 (no egress), deleted on day 10.
    s3, r2, transfer = book().offer("s3_standard"), book().offer("r2_standard"), book().transfer
    gb = 2 / 1024
    life = image(deleted=10.0, published=3.0, views=(4.0, 5.0))
    bill = bill_of(life, [Stay("s3_standard", 0.0), Stay("r2_standard", 3.0)])
    assert bill.total("storage") == pytest.approx(
        gb * (s3.storage_per_gb_month * 3 + r2.storage_per_gb_month * 7) / 30
    )
    assert bill.total("egress") == pytest.approx(transfer.aws_out_per_gb * gb)
    assert bill.total("operations") == pytest.approx(
        ingest_ops("s3_standard")
        + s3.read_per_1000 / 1000
        + r2.write_per_1000 / 1000  # the move
        + 2 * r2.read_per_1000 / 1000  # the views
    )
    # The stack: the API's request to the lifecycle and the streamed transfer.
    prices = book()
    stack = stack_bill(prices, {0: Activity(serves=1, transfers=1)}, 1)
    expected = prices.compute_cost(prices.stack.serve) + prices.compute_cost(prices.stack.transfer)
    expected += prices.compute_cost(prices.stack.audit_entry)  # the transfer's entry
    assert stack.rows["operations"][0] == pytest.approx(expected)
    # Streamed through the function, a transfer costs more than a server-side copy.
    assert prices.compute_cost(prices.stack.transfer) > prices.compute_cost(prices.stack.move)


def test_the_table_keeps_each_record_while_its_image_lives_and_a_while_after() -> None:
    # An image uploaded on day 10 and deleted on day 40: its record is held 20 days in
    # month 0 and 10 in month 1, then kept deleted 30 days (10 in month 1, 20 in month 2).
    held = record_days([image(uploaded=10.0, deleted=40.0), image(uploaded=50.0)], 3, 30.0)
    assert held[0] == pytest.approx((20.0, 0.0))
    assert held[1] == pytest.approx((10.0 + 10.0, 20.0))
    assert held[2] == pytest.approx((30.0, 10.0))
    prices = book()
    per_day = prices.compute.table_storage_per_gb_month / 30 / 1024**3
    bill = stack_bill(prices, {1: Activity(record_days=20.0, deleted_record_days=20.0)}, 3)
    assert bill.rows["storage"][1] == pytest.approx(
        20 * per_day * (prices.stack.record_bytes + prices.stack.deleted_record_bytes)
    )
    lean = pipeline_bill(prices, {1: Activity(record_days=20.0, deleted_record_days=20.0)}, 3)
    assert lean.rows["storage"][1] == pytest.approx(20 * per_day * prices.pipeline.record_bytes)
    # The store's record, in two indexes projecting everything, is five times a lean one.
    assert prices.stack.record_bytes > 5 * prices.pipeline.record_bytes
