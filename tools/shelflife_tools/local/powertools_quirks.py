"""Powertools in a process that runs several invocations at once.

Powertools' ``Metrics`` keeps its metrics in class attributes, shared by every instance
in the process: right in Lambda, where a process runs one invocation at a time. The
local stack runs its functions as threads of one process, so one invocation's flush
could iterate the shared set while another adds to it ("dictionary changed size during
iteration"). Here every change to the set and every flush takes one lock. A flush may
then also carry another invocation's metrics: the local stack's metrics go to its log
files, and their totals stay right.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

_LOCK = threading.RLock()
_GUARDED = (
    "add_metric",
    "add_dimension",
    "add_dimensions",
    "add_metadata",
    "serialize_metric_set",
    "flush_metrics",
    "clear_metrics",
)


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    guarded.__dict__["_shelflife_locked"] = True
    return guarded


def share_metrics_safely() -> None:
    """Guard the provider's methods (once per process)."""
    for name in _GUARDED:
        method = getattr(AmazonCloudWatchEMFProvider, name)
        if not getattr(method, "_shelflife_locked", False):
            setattr(AmazonCloudWatchEMFProvider, name, _locked(method))
