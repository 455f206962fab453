"""Handing an unfinished run to a later invocation: a message on a queue that triggers
the same function, so the invocation that ran out of time can end.

A queue rather than the function invoking itself: nothing in the template refers to
the function's own name, the permission is one ``sqs:SendMessage``, and SQS brings the
retries and the dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shelflife.adapters.queues import SqsQueue


class QueueContinuation(SqsQueue):
    def request(self, payload: Mapping[str, Any]) -> None:
        """Queue ``payload`` (JSON) as the next invocation's event."""
        self.send(payload)
