"""shelflife_tools.local.gateway: HTTP API v2 events, and the local server in front of a handler."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import requests

from shelflife_tools.local.gateway import Identity, LocalGateway, bearer_tokens, http_api_event
from tests.support.events import load_event

SEEN: list[dict[str, Any]] = []


def echo(event: dict[str, Any], context: Any) -> Mapping[str, Any]:
    SEEN.append(event)
    claims = (event["requestContext"].get("authorizer") or {}).get("jwt", {}).get("claims")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"path": event["rawPath"], "claims": claims, "body": event.get("body")}),
    }


@pytest.fixture
def gateway() -> Iterator[LocalGateway]:
    SEEN.clear()
    server = LocalGateway(echo, bearer_tokens({"t1": Identity({"sub": "alice"})})).start()
    yield server
    server.stop()


def test_an_event_has_the_shape_of_the_sample_events() -> None:
    sample = load_event("api/post-uploads.json")
    built = http_api_event(
        "POST", "/uploads", body={"a": 1}, identity=Identity({"sub": "alice"}), query={"x": "1"}
    )
    assert set(sample) <= set(built) | {"queryStringParameters"}
    assert set(sample["requestContext"]) == set(built["requestContext"])
    assert built["requestContext"]["authorizer"]["jwt"]["claims"] == {"sub": "alice"}
    assert (built["rawQueryString"], built["queryStringParameters"]) == ("x=1", {"x": "1"})
    assert json.loads(built["body"]) == {"a": 1}
    binary = http_api_event("POST", "/x", body=b"\x00\xff")
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x00\xff"


def test_without_a_valid_token_only_public_routes_reach_the_function(
    gateway: LocalGateway,
) -> None:
    assert requests.get(f"{gateway.url}/photos", timeout=5).status_code == 401
    wrong = requests.get(f"{gateway.url}/photos", headers={"Authorization": "Bearer x"}, timeout=5)
    assert wrong.status_code == 401
    assert SEEN == []
    health = requests.get(f"{gateway.url}/health", timeout=5)
    assert (health.status_code, health.json()["claims"]) == (200, None)


def test_a_token_becomes_the_authorizers_claims(gateway: LocalGateway) -> None:
    answer = requests.post(
        f"{gateway.url}/uploads?draft=1",
        json={"filename": "a.jpg"},
        headers={"Authorization": "Bearer t1"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.json()["claims"] == {"sub": "alice"}
    assert json.loads(answer.json()["body"]) == {"filename": "a.jpg"}
    (event,) = SEEN
    assert event["queryStringParameters"] == {"draft": "1"}
    assert event["requestContext"]["http"]["method"] == "POST"


def test_a_link_may_carry_the_token_only_where_allowed() -> None:
    SEEN.clear()
    tokens = bearer_tokens({"t1": Identity({"sub": "alice"})})
    strict = LocalGateway(echo, tokens).start()
    local = LocalGateway(echo, tokens, query_tokens=True).start()
    try:
        assert requests.get(f"{strict.url}/dashboard?access_token=t1", timeout=5).status_code == 401
        answer = requests.get(f"{local.url}/dashboard?access_token=t1&x=1", timeout=5)
        assert answer.status_code == 200
        assert answer.json()["claims"] == {"sub": "alice"}
        assert SEEN[-1]["queryStringParameters"] == {"x": "1"}  # the token is not passed on
    finally:
        strict.stop()
        local.stop()


class _ProcessWideEvent:
    """What Powertools' resolver does: the current event in a class attribute."""

    current: dict[str, Any] | None = None


def slow_resolver(event: dict[str, Any], context: Any) -> Mapping[str, Any]:
    _ProcessWideEvent.current = event
    time.sleep(0.005)  # long enough for another request to arrive meanwhile
    claims = _ProcessWideEvent.current["requestContext"]["authorizer"]["jwt"]["claims"]
    return {"statusCode": 200, "body": claims["sub"]}


def test_requests_at_once_each_see_their_own_caller() -> None:
    users = [f"user{i}" for i in range(6)]
    tokens = {f"t-{user}": Identity({"sub": user}) for user in users}
    server = LocalGateway(slow_resolver, bearer_tokens(tokens)).start()
    answers: dict[str, list[str]] = {user: [] for user in users}

    def client(user: str) -> None:
        with requests.Session() as session:  # keep-alive: one connection, many requests
            for _ in range(5):
                reply = session.get(
                    f"{server.url}/photos", headers={"Authorization": f"Bearer t-{user}"}, timeout=5
                )
                answers[user].append(reply.text)

    try:
        threads = [threading.Thread(target=client, args=(user,)) for user in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()

    assert answers == {user: [user] * 5 for user in users}
