"""shelflife.services.operations: admin runs invoked in the functions that own them, and their
errors carried back with their meaning."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from shelflife.adapters.invocation import InProcessInvoker, LambdaInvoker
from shelflife.domain.errors import (
    InvalidArgument,
    OperationFailed,
    RecordNotFound,
    Throttled,
    Unavailable,
)
from shelflife.domain.settings import Settings, TierName
from shelflife.services.operations import Operations
from tests.support.lambda_context import FakeLambdaContext

SETTINGS = Settings.from_env(
    {
        "SHELFLIFE_TABLE_NAME": "shelflife",
        "SHELFLIFE_TEMP_BUCKET": "temp-bucket",
        "SHELFLIFE_HOT_BUCKET": "hot-bucket",
        "SHELFLIFE_COLD_BUCKET": "cold-bucket",
        "SHELFLIFE_LIFECYCLE_FUNCTION_NAME": "shelflife-lifecycle",
        "SHELFLIFE_CAPACITY_FUNCTION_NAME": "shelflife-capacity",
        "SHELFLIFE_CLEANUP_FUNCTION_NAME": "shelflife-cleanup",
    }
)


def payload(value: Any) -> StreamingBody:
    data = json.dumps(value).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def stubbed(response: dict[str, Any] | None = None, error: str | None = None) -> LambdaInvoker:
    client = boto3.client("lambda", region_name="eu-west-1")
    stubber = Stubber(client)
    if error:
        stubber.add_client_error("invoke", service_error_code=error)
    else:
        stubber.add_response("invoke", response or {})
    stubber.activate()
    return LambdaInvoker(client)


def test_each_operation_sends_its_function_the_event_it_takes() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def invoke(self, function: str, event: Any) -> Any:
            calls.append((function, dict(event)))
            return {"ok": True}

        def invoke_async(self, function: str, event: Any) -> None:
            calls.append((f"{function} (async)", dict(event)))

    operations = Operations(SETTINGS, Recorder())
    operations.lifecycle_run(dry_run=True, request_id="r1")
    operations.capacity_run(dry_run=False)
    operations.old_images_cleanup(
        tier=TierName.HOT, bucket=None, dry_run=True, threshold_percent=70
    )
    operations.reconcile(fix=True, adopt=False, run_id="run-1")
    operations.redrive(max_messages=5)
    operations.serve([])  # nothing published to serve: no invocation
    operations.serve(["a", "b"])

    assert calls == [
        (
            "shelflife-lifecycle",
            {"action": "run", "dry_run": True, "request_id": "r1", "max_seconds": 20},
        ),
        ("shelflife-capacity", {"action": "check", "dry_run": False}),
        (
            "shelflife-capacity",
            {"action": "cleanup", "tier": "hot", "dry_run": True, "threshold_percent": 70},
        ),
        (
            "shelflife-cleanup",
            {
                "action": "reconcile",
                "fix": True,
                "adopt": False,
                "max_seconds": 20,
                "run_id": "run-1",
            },
        ),
        ("shelflife-cleanup", {"action": "redrive", "max_messages": 5}),
        ("shelflife-lifecycle (async)", {"action": "serve", "image_ids": ["a", "b"]}),
    ]


def test_an_asynchronous_invocation_is_an_event_and_its_refusal_an_error() -> None:
    client = boto3.client("lambda", region_name="eu-west-1")
    event = {"action": "serve", "image_ids": ["a"]}
    with Stubber(client) as stubber:
        stubber.add_response(
            "invoke",
            {"StatusCode": 202},
            {"FunctionName": "f", "InvocationType": "Event", "Payload": json.dumps(event).encode()},
        )
        LambdaInvoker(client).invoke_async("f", event)
        stubber.assert_no_pending_responses()
    refused = stubbed(error="TooManyRequestsException")
    with pytest.raises(Throttled):
        refused.invoke_async("f", {"action": "serve", "image_ids": ["a"]})


def test_a_lambda_answer_comes_back_as_it_was_sent() -> None:
    invoker = stubbed({"StatusCode": 200, "Payload": payload({"run_id": "x", "complete": True})})
    assert invoker.invoke("f", {"action": "run"}) == {"run_id": "x", "complete": True}


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("InvalidArgument", InvalidArgument),
        ("RecordNotFound", RecordNotFound),
        ("KeyError", OperationFailed),
    ],
)
def test_a_function_error_keeps_its_meaning(error_type: str, expected: type[Exception]) -> None:
    invoker = stubbed(
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": payload({"errorType": error_type, "errorMessage": "no bucket 'x'"}),
        }
    )
    with pytest.raises(expected, match="no bucket 'x'"):
        invoker.invoke("f", {})


def test_lambda_throttling_is_retryable() -> None:
    with pytest.raises(Throttled):
        stubbed(error="TooManyRequestsException").invoke("f", {})


def test_an_operation_without_its_function_is_unavailable() -> None:
    operations = Operations(SETTINGS.model_copy(update={"capacity_function_name": None}), None)  # type: ignore[arg-type]
    with pytest.raises(Unavailable, match="SHELFLIFE_CAPACITY_FUNCTION_NAME"):
        operations.capacity_run(dry_run=True)


def test_in_process_handlers_follow_lambdas_error_contract() -> None:
    def handler(event: dict[str, Any], context: Any) -> Any:
        if event.get("fail"):
            raise InvalidArgument("bad request")
        return {"echo": event}

    invoker = InProcessInvoker({"f": handler}, context_factory=FakeLambdaContext)
    assert invoker.invoke("f", {"a": 1}) == {"echo": {"a": 1}}
    with pytest.raises(InvalidArgument, match="bad request"):
        invoker.invoke("f", {"fail": True})
    with pytest.raises(Unavailable, match="no function 'g'"):
        invoker.invoke("g", {})
