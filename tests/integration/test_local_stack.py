"""The local stack end to end: the corpus uploaded through presigned POSTs as a browser
would, placed by ingest from the upload bucket's notifications, moved through the
lifecycle by the schedules on a moved clock, and a photo deleted through the API
disappearing from its backend through the table's stream and the cleanup function."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
from PIL import Image

from shelflife.adapters.backends import ProviderBackends
from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.domain import clock
from shelflife.domain.policy import tier_at
from shelflife.domain.records import ImageRecord, ImageState
from shelflife.domain.settings import Settings, TierName
from shelflife.domain.storage import sha256_hex
from shelflife_tools.client import ApiClient, UploadResult
from shelflife_tools.local.stack import LocalStack
from tests.support.corpus import CORPUS

FOLDERS = ("photos", "camera", "broken")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(api_port=0, folder=tmp_path / "local") as running:
        running.serve(interval=0.05)
        yield running


def corpus_files() -> list[Path]:
    files = [p for folder in FOLDERS for p in sorted((CORPUS / folder).iterdir()) if p.is_file()]
    assert len(files) >= 9
    return [p for p in files if p.suffix.lower() != ".md"]


def check_invariants(settings: Settings) -> list[ImageRecord]:
    """Every live record's object exists with its checksum, and every bucket's counters
    are the sum of its live records (invariants 1 and 4)."""
    repository = DynamoRepository.from_settings(settings)
    backends = ProviderBackends(settings)
    live: list[ImageRecord] = []
    for bucket in repository.list_buckets():
        page = repository.images_in_bucket(
            bucket.tier.value, bucket.name, with_variants=True, limit=1000
        )
        assert page.cursor is None
        held = [
            size
            for record in page.items
            for place, size in record.held()  # the image and its sized variants
            if place.bucket == bucket.name
        ]
        assert (bucket.used_bytes, bucket.object_count) == (sum(held), len(held)), bucket.name
        records = [r for r in page.items if r.location and r.location.bucket == bucket.name]
        for record in records:
            assert record.location is not None
            stored = backends.for_tier(record.location.tier).get(bucket.name, record.location.key)
            assert sha256_hex(stored.data) == record.stored_sha256
        live += records
    return live


def test_the_corpus_lives_its_life_on_the_local_stack(stack: LocalStack) -> None:
    client = ApiClient(stack.api_url, stack.token("alice"))
    assert requests.get(f"{stack.api_url}/photos", timeout=5).status_code == 401

    results: list[UploadResult] = [client.upload(path, wait=60) for path in corpus_files()]

    assert all(result.placed for result in results), [str(r.path) for r in results if not r.placed]
    states: dict[str, set[str]] = {result.path.parent.name: set() for result in results}
    for result in results:
        assert result.photo is not None
        states[result.path.parent.name].add(result.photo["state"])
    assert states["photos"] == states["camera"] == {"active"}
    assert "rejected" in states["broken"]  # each with its reason, the original quarantined
    for result in results:
        assert result.photo is not None
        if result.photo["state"] == "rejected":
            assert result.photo["rejection_reason"]
    settings = Settings.from_env()
    active = {r.photo_id for r in results if r.photo and r.photo["state"] == "active"}
    live = check_invariants(settings)
    assert {r.id for r in live} == active
    assert {r.location.tier for r in live if r.location} == {TierName.TEMP}
    uploads = (
        ProviderBackends(settings)
        .get("s3")
        .iter_objects(settings.upload_bucket or "", prefix="incoming/")
    )
    assert list(uploads) == []  # every upload consumed

    now = stack.advance(timedelta(hours=49))
    # HOT (in place: TEMP and HOT both store on S3 Standard, so nothing is copied, and
    # nothing is written: policy.tier_at).
    assert {tier_at(r, now, settings) for r in check_invariants(settings)} == {TierName.HOT}
    now = stack.advance(timedelta(days=91))
    after = check_invariants(settings)
    assert {r.id for r in after} == active
    # COLD is Glacier Instant Retrieval: an image too small for the move to pay (its
    # request price and 128 KB minimum against what it saves) stays in HOT, said so.
    archived = [r for r in after if r.location and r.location.tier is TierName.COLD]
    kept = [r for r in after if r not in archived]
    assert archived
    for image in kept:
        assert tier_at(image, now, settings) is TierName.HOT
        assert image.archive_skipped_at is not None
        assert image.stored_size < min(r.stored_size for r in archived)

    victim = archived[0]
    assert victim.location is not None
    cold = ProviderBackends(settings).for_tier(TierName.COLD)
    assert cold.exists(victim.location.bucket, victim.location.key)
    assert client.request("DELETE", f"/photos/{victim.id}")["state"] == "deleted"
    stack.drain()

    assert not cold.exists(victim.location.bucket, victim.location.key)  # through the stream
    remaining = check_invariants(settings)
    assert victim.id not in {r.id for r in remaining}
    assert DynamoRepository.from_settings(settings).get_image(victim.id).state is ImageState.DELETED
    stats = client.get("/stats")
    assert stats["photos"] == len(active) - 1


def test_a_token_the_stack_did_not_sign_is_refused(stack: LocalStack, tmp_path: Path) -> None:
    from shelflife_tools.local.tokens import TokenIssuer

    forged = TokenIssuer.in_folder(tmp_path / "elsewhere").token("alice", admin=True)
    answer = requests.get(
        f"{stack.api_url}/buckets", headers={"Authorization": f"Bearer {forged}"}, timeout=5
    )
    assert answer.status_code == 401
    stack.advance(timedelta(hours=1))  # the capacity schedule records every bucket
    good = requests.get(
        f"{stack.api_url}/buckets",
        headers={"Authorization": f"Bearer {stack.token('ops', admin=True)}"},
        timeout=5,
    )
    assert good.status_code == 200
    assert {b["tier"] for b in good.json()["buckets"]} == {"temp", "hot", "cold"}


def test_the_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    photos = [p for p in corpus_files() if p.parent.name == "photos"][:2]
    with LocalStack(api_port=0, folder=tmp_path / "local", state=state) as first:
        first.serve(interval=0.05)
        client = ApiClient(first.api_url, first.token("alice"))
        ids = [client.upload(path, wait=60).photo_id for path in photos]
        saved_at = first.advance(timedelta(hours=49))
        before = {p["id"]: p for p in client.photos()}
    assert set(before) == set(ids)
    assert (state / "state.json").exists()

    with LocalStack(api_port=0, folder=tmp_path / "local", state=state) as second:
        second.serve(interval=0.05)
        client = ApiClient(second.api_url, second.token("alice"))
        after = {p["id"]: p for p in client.photos()}
        assert after == before
        settings = Settings.from_env()
        now = second.advance(timedelta(0))
        assert now >= saved_at  # the clock went on from there
        assert {tier_at(r, now, settings) for r in check_invariants(settings)} == {TierName.HOT}
        assert {p["tier"] for p in after.values()} == {"hot"}
        second.advance(timedelta(days=91))
        # The larger photo is archived; one too small for Glacier IR to pay stays HOT.
        tiers = {p["id"]: p["tier"] for p in client.photos()}
        largest = max(check_invariants(settings), key=lambda r: r.stored_size)
        assert tiers[largest.id] == "cold"
        assert set(tiers.values()) <= {"cold", "hot"}
        check_invariants(settings)


def test_a_stack_that_cannot_start_leaves_its_state_and_no_server(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_text('{"version": 99, "clock": "2030-01-01T00:00:00+00:00"}')
    (state / "table.jsonl").write_text('{"pk": {"S": "kept"}}\n')
    (state / "objects.jsonl").write_text("")
    saved = {path.name: path.read_bytes() for path in state.iterdir()}
    stack = LocalStack(api_port=0, folder=tmp_path / "local", state=state)

    with pytest.raises(ValueError, match="state version 99"):
        stack.start()

    assert {path.name: path.read_bytes() for path in state.iterdir()} == saved
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{stack.endpoint}/moto-api/data.json", timeout=2)


def test_smuggled_metadata_never_comes_back_through_a_photo_url(
    stack: LocalStack, tmp_path: Path
) -> None:
    # Issue 19: an optimal JPEG was kept byte for byte, with whatever it carried after
    # its end (here a whole JPEG with a GPS fix) or in segments Pillow does not parse.
    from shelflife_tools.prove.hostile import SECRET, smuggled_metadata_files

    client = ApiClient(stack.api_url, stack.token("mallory"))
    photo = (CORPUS / "photos" / "flowers.jpeg").read_bytes()
    for item in smuggled_metadata_files(photo):
        path = tmp_path / item.name
        path.write_bytes(item.data)
        result = client.upload(path, wait=60)
        assert result.photo is not None, item.name
        assert result.photo["state"] == "active", item.name

        served = requests.get(client.get(f"/photos/{result.photo_id}/url")["url"], timeout=10)

        assert served.status_code == 200, item.name
        assert SECRET not in served.content, item.name
        assert b"\xff\xd9\xff\xd8" not in served.content, item.name  # no second image
        assert served.content.endswith(b"\xff\xd9"), item.name


def test_a_sped_up_clock_ingests_each_upload_once(stack: LocalStack) -> None:
    # Issue 19: on `shelflife local --speed 86400` each of three uploads was reported
    # stored and then ingested again as a duplicate 3.5 s later. Three uploads on a
    # clock running a day a second, then the stack left running for 5 s: each upload
    # is ingested exactly once and the duplicates counter stays at zero.
    from shelflife.domain import clock
    from shelflife_tools.cli import accelerate

    stop = accelerate(86_400)
    try:
        client = ApiClient(stack.api_url, stack.token("ines"))
        paths = [CORPUS / "photos" / name for name in ("concert.jpg", "flowers.jpeg")]
        paths.append(CORPUS / "camera" / "jolla.jpg")
        results = [client.upload(path, wait=60) for path in paths]
        time.sleep(5)
    finally:
        stop()
        clock.set_clock()
    assert all(result.placed for result in results)
    repository = DynamoRepository.from_settings(Settings.from_env())
    counted: dict[str, int] = {}
    for day in repository.daily_counts(date(2000, 1, 1)):  # the clock ran days ahead
        for name, value in day.counts.items():
            counted[name] = counted.get(name, 0) + value
    assert (counted.get("uploaded", 0), counted.get("duplicates", 0)) == (3, 0), counted


@pytest.mark.parametrize(
    "parameters",
    [{}, {"HotBackend": "r2", "ColdBackend": "b2"}],
    ids=["on-aws", "hot-on-r2-cold-on-b2"],
)
def test_every_tier_url_opens(tmp_path: Path, parameters: dict[str, str]) -> None:
    """Issue 23, part 1: a photo's URL opens in TEMP, HOT and COLD, whatever provider
    each tier is on: S3 and R2 on the moto server, B2's files served by the stack's
    gateway in place of the simulator's placeholder host (with its token checked)."""
    with LocalStack(api_port=0, folder=tmp_path / "local", parameters=parameters) as stack:
        stack.serve(interval=0.05)
        client = ApiClient(stack.api_url, stack.token("alice"))
        path = CORPUS / "camera" / "jolla.jpg"
        photo = client.upload(path, wait=60).photo_id
        settings = Settings.from_env()
        repository = DynamoRepository.from_settings(settings)
        seen: dict[TierName | None, bytes] = {}
        # TEMP; then promoted (moved to R2 when HOT is there); then archived (taken in
        # 2014, idle 90 days: archived when the archive pays, as for this photo).
        for step in (timedelta(0), timedelta(hours=49), timedelta(days=91)):
            stack.advance(step)
            stack.drain()
            record = repository.get_image(photo)
            assert record.location is not None
            url = client.get(f"/photos/{photo}/url")["url"]
            answer = requests.get(url, timeout=10)
            assert answer.status_code == 200, (record.location, url, answer.text)
            assert sha256_hex(answer.content) == record.stored_sha256
            # The tier it is in: on AWS a promotion relabels in place (policy.tier_at).
            tier = tier_at(record, clock.now(), settings)
            seen[tier] = answer.content
            # Issue 23, part 2: a sized variant, rendered from wherever the photo lies
            # (a COLD one read in place), kept on HOT, opened through the redirect.
            assert tier is not None
            width = {TierName.TEMP: 640, TierName.HOT: 320, TierName.COLD: 160}[tier]
            variant = requests.get(
                f"{stack.api_url}/photos/{photo}/image?w={width}&format=webp",
                headers={"Authorization": f"Bearer {stack.token('alice')}"},
                timeout=30,
            )
            assert variant.status_code == 200, (tier, variant.url, variant.text)
            assert variant.history[0].status_code == 302
            with Image.open(io.BytesIO(variant.content)) as rendered:
                assert (rendered.format, rendered.width) == ("WEBP", width)
        assert set(seen) == {TierName.TEMP, TierName.HOT, TierName.COLD}
        record = repository.get_image(photo)
        assert [v.name for v in record.variants] == [
            "640xauto-contain.webp",
            "320xauto-contain.webp",
            "160xauto-contain.webp",
        ]
        assert {v.location.tier for v in record.variants} == {TierName.HOT}
        check_invariants(settings)  # the variants in their bucket's counters
        if parameters:
            assert "/_b2/file/" in url
            forged = url.split("?", 1)[0] + "?Authorization=fake_download_auth_token_x_y_60"
            assert requests.get(forged, timeout=10).status_code == 401
            missing = url.split("?", 1)[0] + "-gone?" + url.split("?", 1)[1]
            assert requests.get(missing, timeout=10).status_code == 404
        # Deleted with the photo: cleanup removes the variants through the stream.
        client.request("DELETE", f"/photos/{photo}")
        stack.drain()
        for variant_object in record.variants:
            store = ProviderBackends(settings).get(variant_object.location.backend.value)
            assert not store.exists(variant_object.location.bucket, variant_object.location.key)
        check_invariants(settings)
