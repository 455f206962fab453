"""The ports the services talk through that are not storage or the table (those are
``shelflife.domain.storage`` and ``shelflife.domain.repository``): a message queue, the
table's change stream read back, and the other functions invoked. The adapters
(``shelflife.adapters``) implement them; a service sees only these shapes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class QueuedMessage:
    message_id: str
    receipt: str  # what ``delete`` takes
    body: str

    def json(self) -> Any:
        """The body as JSON; None if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Queue(Protocol):
    def send(self, payload: Mapping[str, Any]) -> None: ...

    def receive(self, max_messages: int) -> list[QueuedMessage]: ...

    def delete(self, message: QueuedMessage) -> None: ...

    def depth(self) -> int: ...


class ChangeStream(Protocol):
    def batch(self, info: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The stream records of a failed batch, in the shape Lambda delivers them, from
        the batch description Lambda's on-failure destination wrote."""
        ...


class FunctionInvoker(Protocol):
    def invoke(self, function: str, event: Mapping[str, Any]) -> Any:
        """Run ``function`` on ``event`` and return its answer."""
        ...

    def invoke_async(self, function: str, event: Mapping[str, Any]) -> None:
        """Hand ``event`` to ``function`` without waiting (Lambda retries it)."""
        ...
