from __future__ import annotations

import pytest

from shelflife.domain.errors import ConfigurationError
from shelflife.domain.settings import GIB, MIB, BackendName, Settings, TierName, env_name

ENV = {
    "SHELFLIFE_TABLE_NAME": "shelflife-table",
    "SHELFLIFE_TEMP_BUCKET": "shelflife-temp",
    "SHELFLIFE_HOT_BUCKET": "shelflife-hot",
    "SHELFLIFE_COLD_BUCKET": "shelflife-cold",
}


def test_defaults_are_the_seeds_defaults() -> None:
    settings = Settings.from_env(ENV)

    assert settings.max_upload_bytes == 25 * MIB
    assert (settings.jpeg_quality, settings.max_side_px) == (85, 2000)
    assert settings.temp_hours == 48
    assert settings.published_retention_days == 7
    assert settings.hot_idle_days == 90
    assert settings.cold_retention_days == 365
    assert settings.cleanup_min_age_days == 30
    assert (settings.cleanup_threshold_percent, settings.overflow_threshold_percent) == (85, 95)
    assert settings.tier("temp").backend is BackendName.S3
    assert settings.tier(TierName.HOT).backend is BackendName.S3
    assert settings.tier("cold").backend is BackendName.S3
    assert settings.storage_class("cold") == "GLACIER_IR"
    assert settings.tier("cold").quota_bytes == GIB
    assert settings.price_per_gb_month("s3") == 0.023
    assert settings.price_per_gb_month("r2") == 0.015
    assert settings.price_per_gb_month("b2") == 0.006


def test_every_variable_follows_the_naming_rule() -> None:
    env = {
        **ENV,
        "SHELFLIFE_HOT_BACKEND": "r2",
        "SHELFLIFE_HOT_QUOTA_BYTES": "5000",
        "SHELFLIFE_JPEG_QUALITY": "80",
        "SHELFLIFE_CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example,",
        "SHELFLIFE_ALLOWED_FORMATS": "jpeg, PNG",
        "SHELFLIFE_OUTPUT_FORMAT": "WEBP",
        "SHELFLIFE_R2_ACCOUNT_ID": "abc",
        "SHELFLIFE_B2_APPLICATION_KEY": "k3y-v4lue",
    }

    settings = Settings.from_env(env)

    assert settings.hot.backend is BackendName.R2
    assert settings.hot.quota_bytes == 5000
    assert settings.jpeg_quality == 80
    assert settings.cors_allowed_origins == ("https://a.example", "https://b.example")
    assert settings.allowed_formats == ("JPEG", "PNG")
    assert settings.output_format == "WEBP"
    assert settings.b2_application_key is not None
    assert settings.b2_application_key.get_secret_value() == "k3y-v4lue"
    assert "k3y-v4lue" not in repr(settings)
    assert env_name("hot", "quota_bytes") == "SHELFLIFE_HOT_QUOTA_BYTES"


def test_region_falls_back_to_the_lambda_region() -> None:
    assert Settings.from_env({**ENV, "AWS_REGION": "eu-central-1"}).region == "eu-central-1"
    assert Settings.from_env(
        {**ENV, "SHELFLIFE_REGION": "us-west-2", "AWS_REGION": "x"}
    ).region == ("us-west-2")


def test_explicit_arguments_beat_the_environment() -> None:
    settings = Settings.from_env(
        {**ENV, "SHELFLIFE_JPEG_QUALITY": "70"}, jpeg_quality=90, hot={"backend": "memory"}
    )

    assert settings.jpeg_quality == 90
    assert settings.hot.backend is BackendName.MEMORY
    assert settings.hot.bucket == "shelflife-hot"


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"SHELFLIFE_TABLE_NAME": None}, "SHELFLIFE_TABLE_NAME"),
        ({"SHELFLIFE_COLD_BUCKET": None}, "SHELFLIFE_COLD_BUCKET"),
        ({"SHELFLIFE_JPEG_QUALITY": "high"}, "SHELFLIFE_JPEG_QUALITY"),
        ({"SHELFLIFE_JPEG_QUALITY": "100"}, "SHELFLIFE_JPEG_QUALITY"),
        ({"SHELFLIFE_MAX_UPLOAD_BYTES": "-1"}, "SHELFLIFE_MAX_UPLOAD_BYTES"),
        ({"SHELFLIFE_TEMP_BUCKET": "Not_A_Bucket"}, "SHELFLIFE_TEMP_BUCKET"),
        ({"SHELFLIFE_HOT_QUOTA_BYTES": "0"}, "SHELFLIFE_HOT_QUOTA_BYTES"),
        ({"SHELFLIFE_PRICE_B2": "-0.1"}, "SHELFLIFE_PRICE_B2"),
        ({"SHELFLIFE_ALLOWED_FORMATS": "jpeg,bmp"}, "SHELFLIFE_ALLOWED_FORMATS: Input"),
        ({"SHELFLIFE_ALLOWED_FORMATS": " , "}, "SHELFLIFE_ALLOWED_FORMATS"),
        ({"SHELFLIFE_OUTPUT_FORMAT": "PNG"}, "SHELFLIFE_OUTPUT_FORMAT"),
    ],
)
def test_a_bad_variable_is_named_in_the_error(change: dict[str, str | None], variable: str) -> None:
    env = {**ENV, **change}
    clean = {name: value for name, value in env.items() if value is not None}

    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env(clean)


def test_an_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match="SHELFLIFE_HOT_BACKEND") as error:
        Settings.from_env({**ENV, "SHELFLIFE_HOT_BACKEND": "gcs"})

    for name in ("s3", "r2", "b2", "memory"):
        assert name in str(error.value)


def test_thresholds_must_be_in_order() -> None:
    with pytest.raises(ConfigurationError, match="SHELFLIFE_CLEANUP_THRESHOLD_PERCENT"):
        Settings.from_env(
            {
                **ENV,
                "SHELFLIFE_CLEANUP_THRESHOLD_PERCENT": "96",
                "SHELFLIFE_OVERFLOW_THRESHOLD_PERCENT": "95",
            }
        )


def test_settings_are_frozen() -> None:
    settings = Settings.from_env(ENV)
    with pytest.raises(ValueError, match="frozen"):
        settings.jpeg_quality = 10
