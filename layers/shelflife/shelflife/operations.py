"""The admin operations the API starts: each runs in the function that owns it (the
lifecycle sweep, the capacity check and its cleanup, the cleanup function's redrive and
reconciliation), invoked synchronously with a time budget that fits API Gateway's 30
seconds. The API itself never moves or deletes an object.

A run that does not finish within its budget stops where it is and says so
(``complete: false``): the lifecycle queues its own continuation; a reconciliation is
continued by asking again with its ``run_id``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from shelflife.errors import (
    BackendUnavailable,
    Conflict,
    InvalidArgument,
    RecordNotFound,
    ShelflifeError,
    Throttled,
    Unavailable,
)
from shelflife.settings import Settings, TierName

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class OperationFailed(ShelflifeError):
    """The function ran and failed; the message is its error."""


# A function's own errors keep their meaning for the API's caller.
_FUNCTION_ERRORS: dict[str, type[ShelflifeError]] = {
    "InvalidArgument": InvalidArgument,
    "RecordNotFound": RecordNotFound,
    "Conflict": Conflict,
}


class FunctionInvoker(Protocol):
    def invoke(self, function: str, event: Mapping[str, Any]) -> Any:
        """Run ``function`` on ``event`` and return its answer."""


class LambdaInvoker:
    """Synchronous Lambda invocations (``RequestResponse``)."""

    def __init__(self, client: LambdaClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> LambdaClient:
        if self._client is None:
            import boto3

            self._client = boto3.client("lambda")
        return self._client

    def invoke(self, function: str, event: Mapping[str, Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("TooManyRequestsException", "ThrottlingException"):
                raise Throttled(f"{function}: {code}", backend="lambda") from e
            raise BackendUnavailable(f"{function}: {code or e}", backend="lambda") from e
        except BotoCoreError as e:
            raise BackendUnavailable(f"{function}: {e}", backend="lambda") from e
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise function_error(function, payload)
        return payload


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


def function_error(function: str, payload: Any) -> ShelflifeError:
    """The exception a function's error payload stands for."""
    details = payload if isinstance(payload, dict) else {}
    kind = str(details.get("errorType", "Error"))
    message = str(details.get("errorMessage", "the function failed"))
    error = _FUNCTION_ERRORS.get(kind)
    if error is not None:
        return error(message)
    return OperationFailed(f"{function} failed: {kind}: {message}")


class Operations:
    def __init__(self, settings: Settings, invoker: FunctionInvoker) -> None:
        self.settings = settings
        self.invoker = invoker

    def lifecycle_run(self, *, dry_run: bool, request_id: str) -> dict[str, Any]:
        """A sweep now; ``request_id`` makes a retried request run once."""
        return self._invoke(
            "lifecycle",
            self.settings.lifecycle_function_name,
            {
                "action": "run",
                "dry_run": dry_run,
                "request_id": request_id,
                "max_seconds": self.settings.api_run_seconds,
            },
        )

    def capacity_run(self, *, dry_run: bool) -> dict[str, Any]:
        return self._invoke(
            "capacity",
            self.settings.capacity_function_name,
            {"action": "check", "dry_run": dry_run},
        )

    def old_images_cleanup(
        self,
        *,
        tier: TierName,
        bucket: str | None,
        dry_run: bool,
        threshold_percent: float | None,
    ) -> dict[str, Any]:
        """The age-based cleanup of one bucket, or of every bucket of ``tier``."""
        event: dict[str, Any] = {"action": "cleanup", "tier": tier.value, "dry_run": dry_run}
        if bucket is not None:
            event["bucket"] = bucket
        if threshold_percent is not None:
            event["threshold_percent"] = threshold_percent
        return self._invoke("capacity", self.settings.capacity_function_name, event)

    def reconcile(self, *, fix: bool, adopt: bool, run_id: str | None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "action": "reconcile",
            "fix": fix,
            "adopt": adopt,
            "max_seconds": self.settings.api_run_seconds,
        }
        if run_id is not None:
            event["run_id"] = run_id
        return self._invoke("cleanup", self.settings.cleanup_function_name, event)

    def redrive(self, *, max_messages: int) -> dict[str, Any]:
        return self._invoke(
            "cleanup",
            self.settings.cleanup_function_name,
            {"action": "redrive", "max_messages": max_messages},
        )

    def _invoke(self, what: str, function: str | None, event: dict[str, Any]) -> dict[str, Any]:
        if not function:
            raise Unavailable(
                f"the {what} function is not configured here "
                f"(SHELFLIFE_{what.upper()}_FUNCTION_NAME)"
            )
        answer = self.invoker.invoke(function, event)
        if not isinstance(answer, dict):
            raise OperationFailed(f"{function} answered {type(answer).__name__}, not an object")
        return answer
