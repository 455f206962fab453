"""Invoking the other functions for the admin runs the API starts
(``shelflife.services.operations``): through Lambda (``RequestResponse``), or, on the
local stack and in tests, their handlers in this process with Lambda's error contract.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shelflife.domain.errors import (
    BackendUnavailable,
    Conflict,
    InvalidArgument,
    OperationFailed,
    RecordNotFound,
    ShelflifeError,
    Throttled,
    Unavailable,
)

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

logger = logging.getLogger(__name__)

# A function's own errors keep their meaning for the API's caller.
_FUNCTION_ERRORS: dict[str, type[ShelflifeError]] = {
    "InvalidArgument": InvalidArgument,
    "RecordNotFound": RecordNotFound,
    "Conflict": Conflict,
}


class LambdaInvoker:
    """Synchronous Lambda invocations (``RequestResponse``)."""

    def __init__(self, client: LambdaClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> LambdaClient:
        if self._client is None:
            self._client = boto3.client("lambda")
        return self._client

    def invoke(self, function: str, event: Mapping[str, Any]) -> Any:
        response = self._call(function, event, "RequestResponse")
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise function_error(function, payload)
        return payload

    def invoke_async(self, function: str, event: Mapping[str, Any]) -> None:
        """An ``Event`` invocation: Lambda queues it, runs it and retries it twice on
        failure; the caller does not wait."""
        self._call(function, event, "Event")

    def _call(
        self, function: str, event: Mapping[str, Any], kind: Literal["RequestResponse", "Event"]
    ) -> Any:
        try:
            return self.client.invoke(
                FunctionName=function, InvocationType=kind, Payload=json.dumps(event).encode()
            )
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("TooManyRequestsException", "ThrottlingException"):
                raise Throttled(f"{function}: {code}", backend="lambda") from e
            raise BackendUnavailable(f"{function}: {code or e}", backend="lambda") from e
        except BotoCoreError as e:
            raise BackendUnavailable(f"{function}: {e}", backend="lambda") from e


class InProcessInvoker:
    """The functions' handlers called in this process, with Lambda's error contract: a
    handler that raises answers an error payload (``errorType``, ``errorMessage``), as
    a synchronous invocation does. For the local stack and tests."""

    def __init__(
        self,
        handlers: Mapping[str, Callable[[dict[str, Any], Any], Any]],
        *,
        context_factory: Callable[[], Any],
    ) -> None:
        self.handlers = dict(handlers)
        self.context_factory = context_factory

    def invoke(self, function: str, event: Mapping[str, Any]) -> Any:
        handler = self.handlers.get(function)
        if handler is None:
            raise Unavailable(f"no function {function!r} here; known: {sorted(self.handlers)}")
        # Through JSON both ways, as the Lambda service does.
        request = json.loads(json.dumps(event))
        try:
            answer = handler(request, self.context_factory())
        except Exception as e:
            raise function_error(
                function, {"errorType": type(e).__name__, "errorMessage": str(e)}
            ) from e
        return json.loads(json.dumps(answer, default=str))

    def invoke_async(self, function: str, event: Mapping[str, Any]) -> None:
        """Run at once, in this process; like Lambda's asynchronous invocation, the
        caller never sees the function's failure (its answer or error is dropped)."""
        try:
            self.invoke(function, event)
        except ShelflifeError as e:
            logger.warning("asynchronous %s failed: %s", function, e)


def function_error(function: str, payload: Any) -> ShelflifeError:
    """The exception a function's error payload stands for."""
    details = payload if isinstance(payload, dict) else {}
    kind = str(details.get("errorType", "Error"))
    message = str(details.get("errorMessage", "the function failed"))
    error = _FUNCTION_ERRORS.get(kind)
    if error is not None:
        return error(message)
    return OperationFailed(f"{function} failed: {kind}: {message}")
