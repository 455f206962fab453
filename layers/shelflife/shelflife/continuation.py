"""Handing an unfinished run to a later invocation: a message on a queue that triggers
the same function, so the invocation that ran out of time can end.

A queue rather than the function invoking itself: nothing in the template refers to
the function's own name, the permission is one ``sqs:SendMessage``, and SQS brings the
retries and the dead-letter queue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from shelflife.errors import BackendUnavailable, Throttled

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_THROTTLING = {"ThrottlingException", "RequestThrottled", "AWS.SimpleQueueService.RequestThrottled"}


class QueueContinuation:
    def __init__(self, queue_url: str, *, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs")
        return self._client

    def request(self, payload: Mapping[str, Any]) -> None:
        """Queue ``payload`` (JSON) as the next invocation's event."""
        try:
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(payload))
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in _THROTTLING:
                raise Throttled(f"continuation: {code}", backend="sqs") from e
            raise BackendUnavailable(f"continuation: {code or e}", backend="sqs") from e
        except BotoCoreError as e:
            raise BackendUnavailable(f"continuation: {e}", backend="sqs") from e
