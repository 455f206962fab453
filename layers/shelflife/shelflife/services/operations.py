"""The admin operations the API starts: each runs in the function that owns it (the
lifecycle sweep, the capacity check and its cleanup, the cleanup function's redrive and
reconciliation), invoked synchronously with a time budget that fits API Gateway's 30
seconds. The API itself never moves or deletes an object.

A run that does not finish within its budget stops where it is and says so
(``complete: false``): the lifecycle queues its own continuation; a reconciliation is
continued by asking again with its ``run_id``.
"""

from __future__ import annotations

from typing import Any

from shelflife.domain.errors import OperationFailed, Unavailable
from shelflife.domain.ports import FunctionInvoker
from shelflife.domain.settings import Settings, TierName


class Operations:
    def __init__(self, settings: Settings, invoker: FunctionInvoker) -> None:
        self.settings = settings
        self.invoker = invoker

    def lifecycle_run(self, *, dry_run: bool, request_id: str) -> dict[str, Any]:
        """A sweep now; ``request_id`` makes a retried request run once."""
        return self._lifecycle("run", dry_run=dry_run, request_id=request_id)

    def reschedule(self, *, dry_run: bool, request_id: str) -> dict[str, Any]:
        """Every scheduled image's schedule recomputed from the current policy settings
        (after a change of them), in the lifecycle function; resumed by its queue."""
        return self._lifecycle("reschedule", dry_run=dry_run, request_id=request_id)

    def _lifecycle(self, action: str, *, dry_run: bool, request_id: str) -> dict[str, Any]:
        return self._invoke(
            "lifecycle",
            self.settings.lifecycle_function_name,
            {
                "action": action,
                "dry_run": dry_run,
                "request_id": request_id,
                "max_seconds": self.settings.api_run_seconds,
            },
        )

    def serve(self, image_ids: list[str]) -> None:
        """Ask the lifecycle to move just-published photos to the serving buckets, and
        not wait: the publish is done whatever happens to it (a lost request leaves
        them due, and the daily sweep moves them)."""
        function = self.settings.lifecycle_function_name
        if not function or not image_ids:
            return
        self.invoker.invoke_async(function, {"action": "serve", "image_ids": image_ids})

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
        requested_by: str | None = None,
    ) -> dict[str, Any]:
        """The age-based cleanup of one bucket, or of every bucket of ``tier``, asked
        for by ``requested_by`` (the audit trail's actor of its deletions)."""
        event: dict[str, Any] = {"action": "cleanup", "tier": tier.value, "dry_run": dry_run}
        if requested_by is not None:
            event["requested_by"] = requested_by
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

    def imports(self, request: dict[str, Any], *, requested_by: str) -> dict[str, Any]:
        """A step of an import (a new one, or ``run_id``'s continuation) in the import
        function, within the API's time; ``requested_by`` is the trail's actor."""
        event = {
            **{name: value for name, value in request.items() if value is not None},
            "requested_by": requested_by,
            "max_seconds": self.settings.api_run_seconds,
        }
        return self._invoke("import", self.settings.import_function_name, event)

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
