"""Watching the AWS calls a benchmark makes, whoever makes them (boto3 or pynamodb),
and what a benchmark on moto needs before its first client."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.client

from shelflife_tools.local import moto_quirks


def on_moto() -> None:
    """Fake credentials (never an account's) and the tests' moto quirks: moto ignores
    the conditions of bucket policies, so the TLS-only statement would deny every
    request; the quirk leaves it out of moto's evaluation."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    moto_quirks.apply()


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
