"""Watching the AWS calls a benchmark makes, whoever makes them (boto3 or pynamodb)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.client


@contextmanager
def observed_calls(observe: Callable[[str, dict[str, Any]], None]) -> Iterator[None]:
    """Call ``observe(operation, response)`` after every AWS API call made inside."""
    # Every botocore client goes through this one method.
    client_class: Any = botocore.client.BaseClient
    original = client_class._make_api_call

    def observed(self: Any, operation: str, params: Any) -> Any:
        response = original(self, operation, params)
        observe(operation, response)
        return response

    client_class._make_api_call = observed
    try:
        yield
    finally:
        client_class._make_api_call = original
