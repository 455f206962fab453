"""SQS queues the functions write to and read from: a lifecycle sweep's continuation,
the cleanup function's dead letters. SQS errors stop here, as the storage adapters'
do: throttling becomes ``Throttled``, anything else ``BackendUnavailable``.

``MemoryQueue`` is the in-memory twin for unit tests and the local stack.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shelflife.domain.errors import BackendUnavailable, Throttled
from shelflife.domain.ports import QueuedMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_THROTTLING = {"ThrottlingException", "RequestThrottled", "AWS.SimpleQueueService.RequestThrottled"}
# SQS hands out at most 10 messages a call.
_RECEIVE_BATCH = 10


class SqsQueue:
    def __init__(self, queue_url: str, *, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            self._client = boto3.client("sqs")
        return self._client

    def send(self, payload: Mapping[str, Any]) -> None:
        """Queue ``payload`` as a JSON message."""
        with self._translated("send"):
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(payload))

    def receive(self, max_messages: int) -> list[QueuedMessage]:
        """Up to ``max_messages`` messages, each hidden from other readers for the
        queue's visibility timeout; what is not deleted comes back after it."""
        received: list[QueuedMessage] = []
        while len(received) < max_messages:
            with self._translated("receive"):
                response = self.client.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(_RECEIVE_BATCH, max_messages - len(received)),
                )
            messages = response.get("Messages", [])
            if not messages:
                break
            received += [
                QueuedMessage(m["MessageId"], m["ReceiptHandle"], m.get("Body", ""))
                for m in messages
            ]
        return received

    def delete(self, message: QueuedMessage) -> None:
        with self._translated("delete"):
            self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt)

    def depth(self) -> int:
        """Messages waiting or being handled (SQS's approximate counts)."""
        with self._translated("depth"):
            attributes = self.client.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        return sum(int(value) for value in attributes.values())

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in _THROTTLING:
                raise Throttled(f"queue {what}: {code}", backend="sqs") from e
            raise BackendUnavailable(f"queue {what}: {code or e}", backend="sqs") from e
        except BotoCoreError as e:
            raise BackendUnavailable(f"queue {what}: {e}", backend="sqs") from e


class MemoryQueue:
    """A queue in a list. Received messages stay hidden until deleted or ``release``d,
    like SQS messages within their visibility timeout."""

    def __init__(self) -> None:
        self._messages: dict[str, QueuedMessage] = {}
        self._hidden: set[str] = set()
        self._lock = threading.Lock()

    def send(self, payload: Mapping[str, Any]) -> None:
        message_id = uuid.uuid4().hex
        with self._lock:
            self._messages[message_id] = QueuedMessage(message_id, message_id, json.dumps(payload))

    def receive(self, max_messages: int) -> list[QueuedMessage]:
        with self._lock:
            visible = [m for key, m in self._messages.items() if key not in self._hidden]
            taken = visible[:max_messages]
            self._hidden |= {m.message_id for m in taken}
        return taken

    def delete(self, message: QueuedMessage) -> None:
        with self._lock:
            self._messages.pop(message.receipt, None)
            self._hidden.discard(message.receipt)

    def release(self) -> None:
        """Every hidden message visible again: the visibility timeout has passed."""
        with self._lock:
            self._hidden.clear()

    def depth(self) -> int:
        with self._lock:
            return len(self._messages)

    def bodies(self) -> list[Any]:
        """Every message's JSON body, in order (for tests)."""
        with self._lock:
            return [json.loads(m.body) for m in self._messages.values()]
