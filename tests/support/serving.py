"""A deployment with ``ServeBackend=r2`` for the handler tests: the serving settings in
the environment and the serving bucket on moto's R2 (call inside moto)."""

from __future__ import annotations

import pytest

from shelflife.adapters.backends import R2Backend
from shelflife.domain.storage import BucketPolicy
from tests.conftest import R2_ACCOUNT_ID

SERVE_BUCKET = "shelflife-serve"


def serve_on_r2(monkeypatch: pytest.MonkeyPatch) -> R2Backend:
    """Set the environment a function reads for serving published photos from R2
    (always, so no measured views are needed) and create the serving bucket."""
    for name, value in {
        "SHELFLIFE_SERVE_BACKEND": "r2",
        "SHELFLIFE_SERVE_BUCKET": SERVE_BUCKET,
        "SHELFLIFE_SERVE_PUBLISHED": "always",
        "SHELFLIFE_R2_ACCOUNT_ID": R2_ACCOUNT_ID,
        "SHELFLIFE_R2_ACCESS_KEY_ID": "testing",
        "SHELFLIFE_R2_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    r2 = R2Backend.for_account(R2_ACCOUNT_ID, access_key_id="testing", secret_access_key="testing")
    r2.create_bucket(SERVE_BUCKET, BucketPolicy(tier="hot"))
    return r2
