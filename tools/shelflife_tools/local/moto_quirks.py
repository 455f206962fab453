"""Where moto differs from AWS in a way our tests would trip over, and the fix.

moto evaluates bucket policies without their conditions (moto/iam/access_control.py:
"TODO add support for the Resource and Condition parts"), so the TLS-only statement
every shelflife bucket carries ("deny s3:* unless aws:SecureTransport") denies every
request. Every request in the tests is HTTPS, for which AWS would not apply that
statement, so the patch leaves it out of moto's evaluation and keeps the rest.
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket


def _denies_only_plain_http(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition", {})
    return (
        statement.get("Effect") == "Deny"
        and list(condition) == ["Bool"]
        and condition["Bool"] == {"aws:SecureTransport": "false"}
    )


def _get_permission(self: FakeBucket, action: str, resource: str) -> Any:
    if self.policy is None:
        return PermissionResult.NEUTRAL
    policy = json.loads(self.policy)
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [statement for statement in statements if not _denies_only_plain_http(statement)]
    if not kept:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps({**policy, "Statement": kept})).is_action_permitted(
        action, resource
    )


def apply() -> None:
    FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]
