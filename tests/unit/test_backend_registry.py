from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from shelflife.adapters.backends import (
    BACKENDS,
    B2Backend,
    MemoryBackend,
    ProviderBackends,
    R2Backend,
    S3Backend,
    backend_class,
)
from shelflife.adapters.credentials import Credentials
from shelflife.domain.errors import ConfigurationError
from shelflife.domain.settings import Settings
from tests.unit.test_settings import ENV


def test_backends_are_chosen_by_name() -> None:
    assert backend_class("s3") is S3Backend
    assert backend_class("r2") is R2Backend
    assert backend_class("b2") is B2Backend
    assert backend_class("memory") is MemoryBackend
    assert sorted(BACKENDS) == ["b2", "memory", "r2", "s3"]


def test_an_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match="'gcs'; valid: b2, memory, r2, s3"):
        backend_class("gcs")


def test_tiers_get_their_backend_once() -> None:
    settings = Settings.from_env(ENV, temp={"backend": "memory"}, hot={"backend": "memory"})
    backends = ProviderBackends(settings, credentials=Credentials())

    temp = backends.for_tier("temp")

    assert isinstance(temp, MemoryBackend)
    assert backends.for_tier("hot") is temp  # one instance per backend name


def test_injected_backends_are_used_as_given() -> None:
    given = B2Backend.simulated()
    settings = Settings.from_env({**ENV, "SHELFLIFE_COLD_BACKEND": "b2"})
    backends = ProviderBackends(settings, given={"b2": given})

    assert backends.for_tier("cold") is given


def test_r2_is_s3_with_the_account_endpoint_and_region_auto() -> None:
    settings = Settings.from_env({**ENV, "SHELFLIFE_HOT_BACKEND": "r2"})
    credentials = Credentials(
        r2_account_id="abc123", r2_access_key_id="key", r2_secret_access_key="secret"
    )

    backend = ProviderBackends(settings, credentials=credentials).for_tier("hot")

    assert isinstance(backend, R2Backend)
    assert backend.client.meta.endpoint_url == "https://abc123.r2.cloudflarestorage.com"
    assert backend.client.meta.region_name == "auto"


def test_missing_r2_credentials_name_the_variable() -> None:
    settings = Settings.from_env({**ENV, "SHELFLIFE_HOT_BACKEND": "r2"})

    with pytest.raises(ConfigurationError, match="SHELFLIFE_R2_ACCOUNT_ID"):
        ProviderBackends(settings, credentials=Credentials()).for_tier("hot")


def test_credentials_come_from_the_parameter_when_not_set(aws: None) -> None:
    boto3.client("ssm").put_parameter(
        Name="/shelflife/backends",
        Type="SecureString",
        Value=json.dumps(
            {
                "r2_access_key_id": "from-secret",
                "r2_secret_access_key": "s",
                "b2_application_key_id": "k",
                "b2_application_key": "",
            }
        ),
    )
    settings = Settings.from_env(
        {
            **ENV,
            "SHELFLIFE_CREDENTIALS_PARAMETER": "/shelflife/backends",
            "SHELFLIFE_R2_ACCOUNT_ID": "abc",
            "SHELFLIFE_B2_APPLICATION_KEY": "from-env",
        }
    )

    credentials = Credentials.resolve(settings)

    assert credentials.require_r2() == ("abc", "from-secret", "s")
    assert credentials.require_b2() == ("k", "from-env")


def test_the_parameter_is_not_read_when_everything_is_set() -> None:
    def fail(name: str) -> dict[str, Any]:
        raise AssertionError("parameter read")

    settings = Settings.from_env(
        {
            **ENV,
            "SHELFLIFE_CREDENTIALS_PARAMETER": "/shelflife/x",
            "SHELFLIFE_R2_ACCESS_KEY_ID": "a",
            "SHELFLIFE_R2_SECRET_ACCESS_KEY": "b",
            "SHELFLIFE_B2_APPLICATION_KEY_ID": "c",
            "SHELFLIFE_B2_APPLICATION_KEY": "d",
        }
    )

    assert Credentials.resolve(settings, fetch=fail).require_b2() == ("c", "d")


def test_an_s3_only_function_never_reads_the_parameter(aws: None) -> None:
    # The parameter does not exist: reading it would raise. S3 uses the function's role.
    settings = Settings.from_env(
        {**ENV, "SHELFLIFE_COLD_BACKEND": "b2", "SHELFLIFE_CREDENTIALS_PARAMETER": "/shelflife/x"}
    )
    backends = ProviderBackends(settings)

    assert isinstance(backends.for_tier("temp"), S3Backend)
    with pytest.raises(ConfigurationError, match="SHELFLIFE_CREDENTIALS_PARAMETER: cannot read"):
        backends.for_tier("cold")
