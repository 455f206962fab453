"""shelflife.domain.auth: the caller from the JWT authorizer's claims."""

from __future__ import annotations

from typing import Any

import pytest

from shelflife.domain.auth import caller_from_claims, claim_values
from shelflife.domain.errors import Forbidden, NotAuthenticated
from shelflife.domain.settings import Settings

SETTINGS = Settings.from_env(
    {
        "SHELFLIFE_TABLE_NAME": "shelflife",
        "SHELFLIFE_TEMP_BUCKET": "temp-bucket",
        "SHELFLIFE_HOT_BUCKET": "hot-bucket",
        "SHELFLIFE_COLD_BUCKET": "cold-bucket",
    }
)


@pytest.mark.parametrize(
    ("value", "spaces_separate", "expected"),
    [
        (None, True, []),
        (["admin", "editors"], False, ["admin", "editors"]),
        ("[admin editors]", True, ["admin", "editors"]),  # how HTTP APIs flatten a list
        ("[admin editors]", False, ["admin editors"]),  # one name with a space, or two?
        ('["Marketing admin", "x"]', False, ["Marketing admin", "x"]),  # a JSON list
        ("admin,editors", True, ["admin,editors"]),  # commas never separate
        ("admin", False, ["admin"]),
        ("[]", True, []),
        ("[ ]", False, []),
    ],
)
def test_list_claims_in_every_shape_api_gateway_passes_them(
    value: Any, spaces_separate: bool, expected: list[str]
) -> None:
    assert claim_values(value, spaces_separate=spaces_separate) == expected


@pytest.mark.parametrize(
    "claims",
    [
        # Issue 19: each of these made its holder an administrator.
        {"groups": "Marketing admin"},
        {"groups": "[Marketing admin]"},
        {"groups": "x,admin"},
        {"groups": "[x,admin]"},
        {"groups": "[admin editors]"},  # ambiguous: maybe one group "admin editors"
        {"cognito:groups": "[x,admin]"},
        {"cognito:groups": "administrators"},
        {"cognito:groups": "[admins]"},
        {"groups": ["Marketing admin"]},
        {"groups": '["Marketing admin"]'},
        {"scope": "openid shelflife/admin-readonly"},
        {"scope": "shelflife/admin,openid"},
    ],
)
def test_admin_never_comes_from_a_part_of_a_name(claims: dict[str, Any]) -> None:
    assert not caller_from_claims({"sub": "eve", **claims}, None, SETTINGS).admin


def test_the_subject_is_the_caller() -> None:
    caller = caller_from_claims({"sub": "alice", "cognito:groups": "[editors]"}, None, SETTINGS)
    assert (caller.user_id, caller.admin) == ("alice", False)
    with pytest.raises(Forbidden, match="administrators"):
        caller.require_admin()


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"sub": "ops", "cognito:groups": "[admin]"}, None),
        ({"sub": "ops", "cognito:groups": "[editors admin]"}, None),  # no spaces in names
        ({"sub": "ops", "cognito:groups": ["editors", "admin"]}, None),
        ({"sub": "ops", "groups": ["staff", "admin"]}, None),
        ({"sub": "ops", "groups": '["staff", "admin"]'}, None),
        ({"sub": "ops", "groups": "[admin]"}, None),
        ({"sub": "ops", "groups": "admin"}, None),
        ({"sub": "ops", "scope": "openid shelflife/admin"}, None),
        ({"sub": "ops"}, ["shelflife/admin"]),
    ],
)
def test_an_admin_by_group_or_scope(claims: dict[str, Any], scopes: list[str] | None) -> None:
    caller = caller_from_claims(claims, scopes, SETTINGS)
    assert caller.admin
    caller.require_admin()


def test_the_admin_group_is_a_setting() -> None:
    settings = SETTINGS.model_copy(update={"admin_group": "operators"})
    assert not caller_from_claims({"sub": "x", "groups": "admin"}, None, settings).admin
    assert caller_from_claims({"sub": "x", "groups": "operators"}, None, settings).admin


@pytest.mark.parametrize("claims", [None, {}, {"sub": ""}, {"email": "a@example.com"}])
def test_no_subject_is_not_authenticated(claims: dict[str, Any] | None) -> None:
    with pytest.raises(NotAuthenticated):
        caller_from_claims(claims, None, SETTINGS)


@pytest.mark.parametrize("subject", ["../alice", "a/b", "x" * 129, " alice"])
def test_a_subject_that_cannot_be_a_key_is_refused(subject: str) -> None:
    with pytest.raises(Forbidden, match="usable user id"):
        caller_from_claims({"sub": subject}, None, SETTINGS)
