"""The local stack's moto server runs in a process of its own (shelflife_tools.local.
moto_process): it serves with the quirks applied, and ends with its stack, whether
the stack stops it or its process goes away."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import boto3
import pytest
import requests

from shelflife_tools.local.moto_process import MotoProcess
from tests.conftest import REGION


def _bucket_names(endpoint: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    return [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]


def test_the_server_serves_until_stopped_and_then_is_gone() -> None:
    server = MotoProcess()
    endpoint = server.start()
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        s3.create_bucket(Bucket="kept", CreateBucketConfiguration={"LocationConstraint": REGION})
        assert _bucket_names(endpoint) == ["kept"]
        process = server._process
        assert process is not None
    finally:
        server.stop()

    assert process.returncode is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(endpoint, timeout=2)


def test_ctrl_c_leaves_the_server_to_its_stack() -> None:
    # A terminal's Ctrl-C reaches the child too; the stack still needs the server to
    # save its state, and stops it itself.
    server = MotoProcess()
    endpoint = server.start()
    process = server._process
    assert process is not None
    try:
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert _bucket_names(endpoint) == []
    finally:
        server.stop()

    assert process.returncode == 0


def test_two_servers_keep_their_own_state() -> None:
    first, second = MotoProcess(), MotoProcess()
    one, two = first.start(), second.start()
    try:
        boto3.client("s3", endpoint_url=one, region_name=REGION).create_bucket(
            Bucket="only-in-one", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        assert (_bucket_names(one), _bucket_names(two)) == (["only-in-one"], [])
    finally:
        first.stop()
        second.stop()


def test_the_server_ends_when_the_process_that_started_it_dies() -> None:
    # A parent that starts a server, prints its endpoint and is killed without a stop.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from shelflife_tools.local.moto_process import MotoProcess;"
            "print(MotoProcess().start(), flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    endpoint = parent.stdout.readline().strip()
    assert requests.get(f"{endpoint}/moto-api/data.json", timeout=5).ok
    parent.kill()
    parent.wait()

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            requests.get(f"{endpoint}/moto-api/data.json", timeout=1)
        except requests.ConnectionError:
            return
        time.sleep(0.2)
    raise AssertionError(f"moto's server at {endpoint} outlived its stack's process")
