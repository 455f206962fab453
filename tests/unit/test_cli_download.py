"""`shelflife download`: the options that only shape a sized variant are refused without
--width instead of being silently ignored (the stored photo would be fetched as it is)."""

from __future__ import annotations

import io
from typing import cast

import pytest

from shelflife_tools.cli import UsageError, cmd_download, parser
from shelflife_tools.client import ApiClient


class NoCalls:
    """A client that fails the test if the command reaches the API."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the API was called ({name}) before the options were checked")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--height", "200"], "--height"),
        (["--fit", "cover"], "--fit"),
        (["--format", "webp"], "--format"),
        (["--height", "200", "--format", "avif"], "--height, --format"),
    ],
)
def test_variant_options_without_a_width_are_refused(options: list[str], named: str) -> None:
    args = parser().parse_args(["download", "a" * 32, *options])

    with pytest.raises(UsageError, match=f"^{named} choose a sized variant: give --width too$"):
        cmd_download(cast(ApiClient, NoCalls()), args, io.StringIO())
