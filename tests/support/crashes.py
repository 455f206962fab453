"""Crash injection: stop a service right after its N-th side effect (or read).

``Steps`` wraps the objects a service writes through (repositories, backends) and
counts the calls that change something. With ``crash_after=N`` the N-th such call
completes and then ``InjectedCrash`` is raised, as if the Lambda had died there; it
derives from BaseException so no ``except Exception`` in the code under test can
swallow it. ``before`` runs a callback before the N-th call instead, to interleave a
concurrent delivery at exactly that point.

``FlakyStore`` is the transient kind of fault: a store whose deletes are throttled a
number of times before they work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from shelflife.backends import StorageBackend
from shelflife.errors import Throttled

T = TypeVar("T")

WRITES = frozenset(
    {
        "add_image",
        "replace_image",
        "remove_image",
        "add_bucket",
        "set_bucket_status",
        "set_bucket_counters",
        "save_run",
        "put",
        "put_stream",
        "copy",
        "delete",
        "create_bucket",
    }
)


class InjectedCrash(BaseException):
    pass


# Reads worth a crash or a fault between them: a verification, a page of due records.
READS = frozenset({"get", "open", "head", "find_image", "due_images", "list_buckets"})


class Steps:
    def __init__(self, watched: frozenset[str] = WRITES) -> None:
        # The calls that count as steps: writes by default; WRITES | READS for "between
        # any two steps", reads included.
        self.watched = watched
        self.log: list[str] = []
        self.crash_after: int | None = None
        self.before: tuple[int, Callable[[], object]] | None = None

    def wrap(self, target: T, label: str) -> T:
        # The proxy offers the target's interface; typed as the target for the caller.
        proxy: Any = _Proxy(target, label, self)
        return proxy  # type: ignore[no-any-return]

    def _call(
        self, label: str, name: str, method: Callable[..., Any], *args: Any, **kw: Any
    ) -> Any:
        number = len(self.log) + 1
        if self.before is not None and self.before[0] == number:
            callback, self.before = self.before[1], None
            callback()
        result = method(*args, **kw)
        self.log.append(f"{label}.{name}")
        if self.crash_after == len(self.log):
            raise InjectedCrash(f"crash after step {len(self.log)}: {label}.{name}")
        return result


class _Proxy:
    def __init__(self, target: Any, label: str, steps: Steps) -> None:
        self._target = target
        self._label = label
        self._steps = steps

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in self._steps.watched or not callable(attribute):
            return attribute

        def counted(*args: Any, **kw: Any) -> Any:
            return self._steps._call(self._label, name, attribute, *args, **kw)

        return counted


class FlakyStore:
    """A store whose deletes fail ``failures`` times (None: always) before they work."""

    def __init__(self, store: StorageBackend, failures: int | None) -> None:
        self._store = store
        self.failures = failures
        self.attempts = 0

    def delete(self, bucket: str, key: str) -> None:
        self.attempts += 1
        if self.failures is None or self.attempts <= self.failures:
            raise Throttled("delete: slow down", backend=self._store.name)
        self._store.delete(bucket, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
