"""Crash injection: stop a service right after its N-th side effect (or read).

``Steps`` wraps the objects a service writes through (repositories, backends) and
counts the calls that change something. With ``crash_after=N`` the N-th such call
completes and then ``InjectedCrash`` is raised, as if the Lambda had died there; it
derives from BaseException so no ``except Exception`` in the code under test can
swallow it. ``before`` runs a callback before the N-th call instead, to interleave a
concurrent delivery at exactly that point.

``Steps.inject(n, fault)`` is the general form, for the fault campaign: a crash after
the N-th call, or a transient error there (throttled or a 5xx before the call acts; a
timeout after it acted, so the caller cannot tell whether it did). ``watched=None``
counts every public call as a step.

``FlakyStore`` is the transient kind of fault: a store whose deletes are throttled a
number of times before they work.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from shelflife.adapters.backends import StorageBackend
from shelflife.domain.errors import BackendUnavailable, Throttled

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


class Fault(StrEnum):
    CRASH = "crash"  # the call is done, then the process dies
    THROTTLED = "throttled"  # refused before it acts: slow down
    FAILED = "5xx"  # refused before it acts: the provider failed
    TIMEOUT = "timeout"  # it acted, and the answer never came back
    # Not a failure: the owner uploads the same bytes again just before the step (the
    # fault campaign's flows that have an upload to repeat; issue 19).
    REUPLOAD = "reupload"


def transient_error(fault: Fault, where: str) -> Exception:
    """The error an adapter raises for ``fault`` (adapters map every provider's to these)."""
    if fault is Fault.THROTTLED:
        return Throttled(f"injected: slow down at {where}", backend=where)
    if fault is Fault.FAILED:
        return BackendUnavailable(f"injected: 503 at {where}", backend=where)
    return BackendUnavailable(f"injected: read timed out at {where}", backend=where)


# Reads worth a crash or a fault between them: a verification, a page of due records.
READS = frozenset({"get", "open", "head", "find_image", "due_images", "list_buckets"})


class Steps:
    def __init__(self, watched: frozenset[str] | None = WRITES) -> None:
        # The calls that count as steps: writes by default; WRITES | READS for "between
        # any two steps", reads included; None for every public call.
        self.watched = watched
        self.log: list[str] = []
        self.crash_after: int | None = None
        self.before: tuple[int, Callable[[], object]] | None = None
        self.fault: tuple[int, Fault] | None = None

    def inject(self, step: int, fault: Fault) -> None:
        if fault is Fault.REUPLOAD:
            raise ValueError("a re-upload is an interleaving: set Steps.before")
        if fault is Fault.CRASH:
            self.crash_after = step
        else:
            self.fault = (step, fault)

    def counts(self, name: str) -> bool:
        return not name.startswith("_") if self.watched is None else name in self.watched

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
        fault = None
        if self.fault is not None and self.fault[0] == number:
            fault, self.fault = self.fault[1], None
        if fault in (Fault.THROTTLED, Fault.FAILED):
            self.log.append(f"{label}.{name}")
            raise transient_error(fault, label)
        result = method(*args, **kw)
        self.log.append(f"{label}.{name}")
        if fault is Fault.TIMEOUT:
            raise transient_error(fault, label)
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
        if not self._steps.counts(name) or not callable(attribute):
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
