"""The template's functions on the local stack: each handler called as Lambda calls it
(one invocation at a time, with a context and its timeout), its output in a log file of
its own."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from shelflife_tools.local.context import LocalContext


class FunctionOutput(io.TextIOBase):
    """``sys.stdout`` while the stack runs: what a function prints (its JSON logs, its
    metrics) goes to its own log file, as Lambda sends it to CloudWatch Logs; what
    anything else prints goes where it always did."""

    def __init__(self, terminal: TextIO, folder: Path) -> None:
        self.terminal = terminal
        self.folder = folder
        self.current = threading.local()
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def of(self, function: str) -> Iterator[None]:
        previous = getattr(self.current, "function", None)
        self.current.function = function
        try:
            yield
        finally:
            self.current.function = previous

    def write(self, text: str) -> int:
        function = getattr(self.current, "function", None)
        if function is None:
            return self.terminal.write(text)
        with self._lock:
            if function not in self._files:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._files[function] = (self.folder / f"{function}.log").open("a")
            written = self._files[function].write(text)
            self._files[function].flush()
            return written

    def flush(self) -> None:
        self.terminal.flush()

    def close_files(self) -> None:
        with self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()


@dataclass
class LocalFunction:
    """One function: its handler module as one execution environment, so one
    invocation at a time (as with reserved concurrency 1), its timeout and what Lambda
    does with its async failures. Not several environments in this process: Powertools'
    resolver keeps the current event in a class attribute, so two api invocations at
    once would read each other's caller; and more ingest environments placed uploads no
    faster, the process being CPU-bound (docs/RELIABILITY.md)."""

    name: str
    module: ModuleType
    timeout: int
    max_retries: int = 2
    on_failure_queue: str | None = None
    output: FunctionOutput | None = None
    invocations: int = 0
    _one_at_a_time: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._one_at_a_time:
            self.invocations += 1
            context = LocalContext(function_name=self.name, timeout_seconds=self.timeout)
            logs = self.output.of(self.name) if self.output else contextlib.nullcontext()
            with logs:
                return self.module.lambda_handler(event, context)

    def handler(self, event: dict[str, Any], context: Any) -> Any:
        return self.invoke(event)
