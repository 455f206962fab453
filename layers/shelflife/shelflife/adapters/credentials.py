"""Credentials for the backends that are not AWS (R2, B2).

In Lambda they come from one SSM Parameter Store SecureString (JSON; the standard tier
costs nothing, where a Secrets Manager secret costs $0.40 a month), read once per cold
start through Powertools' parameters utility, which caches it; locally and in tests
they can be set directly in the settings. Direct settings win over the parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shelflife.domain.errors import ConfigurationError
from shelflife.domain.settings import Settings, env_name

_FIELDS = (
    "r2_access_key_id",
    "r2_secret_access_key",
    "b2_application_key_id",
    "b2_application_key",
)

ParameterFetcher = Callable[[str], Mapping[str, Any]]


def _fetch_parameter(name: str) -> Mapping[str, Any]:
    # Imported here so that settings-only code paths do not pay for the import.
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import (
        GetParameterError,
        TransformParameterError,
    )

    try:
        value = parameters.get_parameter(name, decrypt=True, transform="json")
    except (GetParameterError, TransformParameterError) as e:
        raise ConfigurationError(
            f"{env_name('credentials_parameter')}: cannot read the parameter {name}: {e}"
        ) from e
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{env_name('credentials_parameter')}: the parameter is not a JSON object"
        )
    return value


@dataclass(frozen=True)
class Credentials:
    r2_account_id: str | None = None
    r2_access_key_id: str | None = None
    r2_secret_access_key: str | None = None
    b2_application_key_id: str | None = None
    b2_application_key: str | None = None

    @classmethod
    def resolve(cls, settings: Settings, fetch: ParameterFetcher = _fetch_parameter) -> Credentials:
        values: dict[str, str | None] = {
            name: secret.get_secret_value() if (secret := getattr(settings, name)) else None
            for name in _FIELDS
        }
        if settings.credentials_parameter and not all(values.values()):
            stored = fetch(settings.credentials_parameter)
            for name in _FIELDS:
                values[name] = values[name] or (str(stored[name]) if stored.get(name) else None)
        return cls(r2_account_id=settings.r2_account_id, **values)

    def require_r2(self) -> tuple[str, str, str]:
        return (
            _required(self.r2_account_id, "r2_account_id"),
            _required(self.r2_access_key_id, "r2_access_key_id"),
            _required(self.r2_secret_access_key, "r2_secret_access_key"),
        )

    def require_b2(self) -> tuple[str, str]:
        return (
            _required(self.b2_application_key_id, "b2_application_key_id"),
            _required(self.b2_application_key, "b2_application_key"),
        )


def _required(value: str | None, field: str) -> str:
    if not value:
        raise ConfigurationError(
            f"{env_name(field)}: required by a tier on this backend; set it, or put "
            f"{field!r} in the parameter named by {env_name('credentials_parameter')}"
        )
    return value
