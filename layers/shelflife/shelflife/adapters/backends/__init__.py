"""Storage backends, chosen by name: ``s3``, ``r2``, ``b2``, ``memory``."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from shelflife.adapters.backends.b2 import B2Backend
from shelflife.adapters.backends.memory import MemoryBackend
from shelflife.adapters.backends.s3 import R2Backend, S3Backend
from shelflife.adapters.credentials import Credentials
from shelflife.domain.errors import ConfigurationError
from shelflife.domain.storage import (
    BucketDescription,
    BucketPolicy,
    BucketUsage,
    ObjectInfo,
    ObjectPage,
    StorageBackend,
    StoredObject,
)

if TYPE_CHECKING:
    from shelflife.domain.settings import Settings, TierName

BACKENDS: Mapping[str, type[S3Backend | B2Backend | MemoryBackend]] = {
    "s3": S3Backend,
    "r2": R2Backend,
    "b2": B2Backend,
    "memory": MemoryBackend,
}


def backend_class(name: str) -> type[S3Backend | B2Backend | MemoryBackend]:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown storage backend {name!r}; valid: {', '.join(sorted(BACKENDS))}"
        ) from None


class ProviderBackends:
    """The backends one function uses, built on first use and kept for the life of the
    execution environment. Tests and the local stack pass ready-made ones in ``given``."""

    def __init__(
        self,
        settings: Settings,
        *,
        credentials: Credentials | None = None,
        given: Mapping[str, StorageBackend] | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._built: dict[str, StorageBackend] = dict(given or {})
        self._lock = threading.Lock()

    def get(self, name: str) -> StorageBackend:
        with self._lock:
            if name not in self._built:
                cls = backend_class(name)
                credentials = self._resolved_credentials() if cls.needs_credentials else None
                self._built[name] = cls.from_settings(self._settings, credentials)
            return self._built[name]

    def for_tier(self, tier: TierName | str) -> StorageBackend:
        return self.get(self._settings.tier(tier).backend.value)

    def _resolved_credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = Credentials.resolve(self._settings)
        return self._credentials


__all__ = [
    "BACKENDS",
    "B2Backend",
    "BucketDescription",
    "BucketPolicy",
    "BucketUsage",
    "MemoryBackend",
    "ObjectInfo",
    "ObjectPage",
    "ProviderBackends",
    "R2Backend",
    "S3Backend",
    "StorageBackend",
    "StoredObject",
    "backend_class",
]
