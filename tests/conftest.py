"""Fixtures shared by every test tier.

No test reaches AWS, R2 or B2: fake credentials are forced before any client exists,
and AWS calls go to moto.
"""

from __future__ import annotations

import os

# Before boto3 or moto are imported anywhere: never the real account, whatever the
# shell has. R2's account endpoint is served by moto's S3 (see tests/contract).
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "MOTO_S3_CUSTOM_ENDPOINTS": "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com",
        # botocore sends a call naming a stream ARN to the account's own endpoint
        # (<account>.streams-ddb.<region>...), which moto does not serve; the regional
        # endpoint answers the same.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
)

from collections.abc import Iterator  # noqa: E402
from typing import Final  # noqa: E402

import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from shelflife_tools.local import moto_quirks  # noqa: E402

moto_quirks.apply()

REGION: Final = "eu-west-1"
R2_ACCOUNT_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def aws() -> Iterator[None]:
    """Every AWS call inside the test goes to a fresh in-process moto."""
    with mock_aws():
        yield
