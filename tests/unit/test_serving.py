"""Published photos served from R2 (issue 21): the serving buckets (``Settings.serve``)
beside HOT's own, the decision from measured views (``tuning.serve_published``), the
move at publishing (the API asks the lifecycle, the daily sweep catches up), and the
late sweep that deletes instead of moving. Crashes at every step of the move are in
``test_lifecycle_faults`` ("serve-s3-to-r2")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shelflife.adapters.backends import MemoryBackend
from shelflife.domain.auth import Caller
from shelflife.domain.costs import GB, CostModel
from shelflife.domain.errors import ConfigurationError
from shelflife.domain.policy import next_step, published
from shelflife.domain.pricebook import book
from shelflife.domain.records import ImageAction, ImageRecord
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.domain.tuning import serve_published, tuned
from shelflife.services.capacity import CapacityService
from shelflife.services.lifecycle import Outcome
from shelflife.services.photos import PhotoService
from shelflife.services.placement import Placement
from tests.support.lifecycle import NOW, World, lifecycle_settings
from tests.unit.test_tuning import days_of

SERVE = {"backend": "r2", "bucket": "shelflife-serve"}


def serving_world(when: str = "always", **overrides: Any) -> World:
    """HOT priced as S3 (one in-memory store stands in for every backend), serving
    buckets on R2."""
    return World(
        settings=lifecycle_settings(
            hot={"backend": "s3"}, serve=SERVE, serve_published=when, **overrides
        )
    )


def publish(world: World, image: ImageRecord) -> list[str]:
    """The API's publish: the photo's ids the lifecycle is asked to serve."""
    photos = PhotoService(world.settings, world.repository, world.backends(), clock=lambda: NOW)
    result = photos.publish(Caller("alice"), "d1", [image.id])
    assert result.updated == [image.id]
    return result.to_serve


# ---- settings ------------------------------------------------------------------------


def test_the_serving_buckets_are_set_by_their_backend_and_none_without_one() -> None:
    base = {
        "SHELFLIFE_TABLE_NAME": "shelflife",
        "SHELFLIFE_TEMP_BUCKET": "shelflife-temp",
        "SHELFLIFE_HOT_BUCKET": "shelflife-hot",
        "SHELFLIFE_COLD_BUCKET": "shelflife-cold",
        "SHELFLIFE_SERVE_BUCKET": "shelflife-serve",
    }
    assert Settings.from_env({**base, "SHELFLIFE_SERVE_BACKEND": ""}).serve is None
    settings = Settings.from_env({**base, "SHELFLIFE_SERVE_BACKEND": "r2"})
    assert settings.serve is not None
    assert (settings.serve.backend, settings.serve.bucket) == (BackendName.R2, "shelflife-serve")
    assert settings.shelves()[-1] == (TierName.HOT, BackendName.R2)
    assert settings.offer_name(TierName.HOT, BackendName.R2) == "r2_standard"
    assert settings.offer_name(TierName.HOT) == "s3_standard"
    assert settings.stack_shape().credentials  # R2 is reached with keys
    with pytest.raises(ConfigurationError, match="SHELFLIFE_SERVE_BACKEND"):
        Settings.from_env({**base, "SHELFLIFE_SERVE_BACKEND": "s3"})  # HOT's own backend
    with pytest.raises(ConfigurationError, match="SHELFLIFE_SERVE_PUBLISHED"):
        Settings.from_env({**base, "SHELFLIFE_SERVE_PUBLISHED": "sometimes"})


# ---- the decision --------------------------------------------------------------------


def test_the_move_to_r2_is_priced_by_hand() -> None:
    settings = Settings.from_env(
        {},
        table_name="shelflife",
        temp={"backend": "s3", "bucket": "shelflife-temp"},
        hot={"backend": "s3", "bucket": "shelflife-hot"},
        cold={"backend": "s3", "bucket": "shelflife-cold"},
        serve={"backend": "r2", "bucket": "shelflife-serve"},
    )
    s3, r2 = book().offer("s3_standard"), book().offer("r2_standard")
    size, views, days = 1_000_000, 3.0, 7
    estimate = CostModel(settings).serve(size, views, days)
    gb = size / GB
    cost = (
        s3.read_per_request
        + r2.write_per_request
        + book().transfer.aws_out_per_gb * gb  # leaving AWS once
        + r2.storage_per_gb_month * gb * days / 30
    )
    saving = (
        views * (s3.egress_per_gb * gb + s3.read_per_request - r2.read_per_request)
        + s3.storage_per_gb_month * gb * days / 30
    )
    assert estimate.cost == pytest.approx(cost)
    assert estimate.saving == pytest.approx(saving)
    assert estimate.worth_it
    # Under one download a photo the transfer out of AWS is not won back.
    assert not CostModel(settings).serve(size, 0.5, days).worth_it


def test_auto_serves_once_measured_views_pay_for_the_move() -> None:
    settings = lifecycle_settings(hot={"backend": "s3"}, serve=SERVE)
    assert settings.serve_published == "auto"
    assert not settings.serves_published()  # "auto" means not yet, until tuned

    def decided(**counts: int) -> str:
        return serve_published(days_of(**counts), settings)

    mb = 1_000_000
    assert decided(published=200, published_views=1000, published_bytes=200 * mb) == "always"
    # No views, too few publishes measured, or views too rare to win the transfer back.
    assert decided(published=200, published_views=0, published_bytes=200 * mb) == "never"
    assert decided(published=99, published_views=990, published_bytes=99 * mb) == "never"
    assert decided(published=200, published_views=100, published_bytes=200 * mb) == "never"
    # The settings' own word, and none without serving buckets.
    always = lifecycle_settings(serve=SERVE, serve_published="always")
    assert serve_published([], always) == "always"
    never = lifecycle_settings(serve=SERVE, serve_published="never")
    assert serve_published(days_of(published=200, published_views=1000), never) == "never"
    assert serve_published([], lifecycle_settings(serve_published="always")) == "never"
    assert tuned(settings, days_of(published=200, published_views=1000, published_bytes=200 * mb))
    assert tuned(
        settings, days_of(published=200, published_views=1000, published_bytes=200 * mb)
    ).serves_published()


def test_the_policy_serves_a_published_photo_at_once_then_deletes_it_where_it_is() -> None:
    world = serving_world()
    image = world.change(world.upload(TierName.HOT, age=timedelta(days=3)), published)
    assert image.next_action is ImageAction.SERVE
    assert image.due_at == NOW
    served = image.model_copy(
        update={"location": image.location.model_copy(update={"backend": BackendName.R2})}  # type: ignore[union-attr]
    )
    step = next_step(served, world.settings)
    assert step is not None
    assert (step.action, step.due_at) == (ImageAction.DELETE, NOW + timedelta(days=7))
    # Without serving buckets nothing changes: deleted after 7 days where it lies.
    plain = lifecycle_settings()
    step = next_step(image, plain)
    assert step is not None
    assert step.action is ImageAction.DELETE


# ---- the move ------------------------------------------------------------------------


def test_publishing_moves_the_photo_to_the_serving_bucket_and_its_url_is_signed_there() -> None:
    world = serving_world()
    image = world.upload(TierName.HOT, age=timedelta(days=3), draft_id="d1", size=5000)

    to_serve = publish(world, image)
    assert to_serve == [image.id]
    [result] = world.service().serve(to_serve)
    world.cleanup()

    assert result.outcome is Outcome.SERVED
    served = world.get(image)
    assert served.location is not None
    assert (served.location.tier, served.location.backend) == (TierName.HOT, BackendName.R2)
    assert served.location.bucket == "shelflife-serve"
    assert served.tier is TierName.HOT
    assert served.next_action is ImageAction.DELETE
    world.assert_consistent()  # the S3 copy is gone, counters follow the bytes
    [serving] = [b for b in world.repository.list_buckets("hot") if b.backend is BackendName.R2]
    assert (serving.used_bytes, serving.object_count) == (5000, 1)
    photos = PhotoService(world.settings, world.repository, world.backends(), clock=lambda: NOW)
    url = photos.url(Caller("alice"), image.id)
    assert "shelflife-serve" in url.url
    # Asked again (Lambda retries an asynchronous invocation): nothing more happens.
    [again] = world.service().serve(to_serve)
    assert again.outcome is Outcome.RESCHEDULED
    world.now = NOW + timedelta(days=7, hours=1)
    assert world.sweep().counts["deleted"] == 1
    assert world.objects() == set()
    world.assert_consistent()


def test_a_lost_serve_request_is_done_by_the_daily_sweep() -> None:
    world = serving_world()
    image = world.upload(TierName.HOT, age=timedelta(days=3), draft_id="d1")
    publish(world, image)  # the API's request to the lifecycle never arrives

    world.now = NOW + timedelta(hours=20)
    report = world.sweep()

    assert report.counts["served"] == 1
    assert world.get(image).location.backend is BackendName.R2  # type: ignore[union-attr]
    world.assert_consistent()


def test_a_sweep_after_the_retention_deletes_instead_of_serving() -> None:
    world = serving_world()
    image = world.upload(TierName.HOT, age=timedelta(days=3), draft_id="d1")
    publish(world, image)

    world.now = NOW + timedelta(days=8)
    report = world.sweep()

    assert (report.counts["served"], report.counts["deleted"]) == (0, 1)
    assert world.objects() == set()
    world.assert_consistent()


def test_without_measured_views_auto_leaves_published_photos_where_they_are() -> None:
    world = serving_world("auto")
    image = world.upload(TierName.HOT, age=timedelta(days=3), draft_id="d1")

    assert publish(world, image) == []
    assert world.get(image).next_action is ImageAction.DELETE


def test_auto_serves_once_the_deployments_views_are_measured() -> None:
    world = serving_world("auto")
    world.repository.add_daily_counts(
        (NOW - timedelta(days=3)).date(),
        {"published": 300, "published_views": 1500, "published_bytes": 300 * 400_000},
    )
    image = world.upload(TierName.HOT, age=timedelta(days=3), draft_id="d1", size=400_000)

    assert publish(world, image) == [image.id]
    [today] = world.repository.daily_counts(NOW.date())
    assert today.counts["published_bytes"] == 400_000


# ---- buckets -------------------------------------------------------------------------


def test_hot_and_its_serving_buckets_are_placed_and_overflow_apart() -> None:
    world = serving_world()
    placement = Placement(world.repository, world.settings, world.backends())
    assert placement.choose(TierName.HOT, 10).name == "shelflife-hot"
    assert placement.choose(TierName.HOT, 10, backend=BackendName.R2).name == "shelflife-serve"
    serving = world.repository.get_bucket("hot", "shelflife-serve")
    world.repository.set_bucket_counters(
        "hot",
        "shelflife-serve",
        used_bytes=serving.capacity_bytes,
        object_count=1,
        expected=(0, 0),
    )

    report = CapacityService(world.settings, world.repository, world.backends()).check()

    assert report.opened == ["shelflife-serve-1"]
    opened = world.repository.get_bucket("hot", "shelflife-serve-1")
    assert opened.backend is BackendName.R2
    store = world.stores[BackendName.R2]
    assert isinstance(store, MemoryBackend)
    assert store.bucket_exists("shelflife-serve-1")
    assert placement.choose(TierName.HOT, 10).name == "shelflife-hot"  # HOT's own: untouched


def test_stats_price_the_serving_buckets_at_their_own_offer() -> None:
    from shelflife.services.stats import StatsService

    world = serving_world()
    placement = Placement(world.repository, world.settings, world.backends())
    placement.buckets(TierName.HOT)
    placement.buckets(TierName.HOT, BackendName.R2)
    for name in ("shelflife-hot", "shelflife-serve"):
        world.repository.set_bucket_counters(
            "hot", name, used_bytes=GB, object_count=1000, expected=(0, 0)
        )

    stats = StatsService(world.settings, world.repository, clock=lambda: NOW).stats()

    [hot] = [tier for tier in stats.tiers if tier.tier == "hot"]
    s3, r2 = book().offer("s3_standard"), book().offer("r2_standard")
    assert hot.bytes == 2 * GB
    assert hot.monthly_cost == pytest.approx(s3.storage_per_gb_month + r2.storage_per_gb_month)
    tiers = StatsService(world.settings, world.repository).tiers()
    assert tiers["serve"]["backend"] == "r2"
    assert tiers["serve"]["price_per_gb_month"] == r2.storage_per_gb_month
    assert any(rule["rule"] == "serve" for rule in tiers["rules"])
