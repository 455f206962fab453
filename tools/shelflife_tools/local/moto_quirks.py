"""Where moto differs from AWS in a way our tests would trip over, and the fix.

moto evaluates bucket policies without their conditions (moto/iam/access_control.py:
"TODO add support for the Resource and Condition parts"), so the TLS-only statement
every shelflife bucket carries ("deny s3:* unless aws:SecureTransport") denies every
request. Every request in the tests is HTTPS, for which AWS would not apply that
statement, so the patch leaves it out of moto's evaluation and keeps the rest.

moto's DynamoDB ``TransactWriteItems`` deep-copies every table it touches, once per
item of the transaction, to roll back on failure: a cost that grows with the table and
its stream (the load run's 2,000 uploads took it past 10 GB), and a copy that races any
write arriving meanwhile on the threaded server ("dictionary changed size during
iteration"). The patch backs up just the transaction's items and the stream's length,
restores them if the transaction fails, and runs DynamoDB writes, transactions and
stream reads one at a time, so a transaction is isolated as DynamoDB isolates it.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
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


# ---- DynamoDB transactions ------------------------------------------------------------

_DYNAMODB = threading.RLock()
_ORIGINAL_TRANSACT = DynamoDBBackend.transact_write_items


class _TablesAreNotCopied:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend: its whole-table
    backup becomes the table itself (the patched transaction keeps its own backup)."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _key(table: Table, op_type: str, op: dict[str, Any]) -> tuple[Any, Any]:
    attributes = op["Item"] if op_type == "Put" else op["Key"]
    hash_key = DynamoType(attributes[table.hash_key_attr])
    if table.range_key_attr is None:
        return hash_key, None
    return hash_key, DynamoType(attributes[table.range_key_attr])


def _put_back(table: Table, hash_key: Any, range_key: Any, before: Any) -> None:
    if range_key is None:
        if before is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = before
    elif before is None:
        table.items[hash_key].pop(range_key, None)
    else:
        table.items[hash_key][range_key] = before


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    with _DYNAMODB:
        saved = []
        streams: dict[int, tuple[Any, int]] = {}
        for item in transact_items:
            try:
                op_type, op = next(iter(item.items()))
                table = self.get_table(op["TableName"])
                hash_key, range_key = _key(table, op_type, op)
                before = table.get_item(hash_key, range_key)
            except Exception:
                continue
            saved.append((table, hash_key, range_key, copy.deepcopy(before)))
            if table.stream_shard is not None:
                shard = table.stream_shard
                streams.setdefault(id(table), (shard, len(shard.items)))
        try:
            _ORIGINAL_TRANSACT(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, before in reversed(saved):
                _put_back(table, hash_key, range_key, before)
            for shard, length in streams.values():
                del shard.items[length:]
            raise


def _one_at_a_time(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB:
            return method(*args, **kwargs)

    return locked


def _patch_dynamodb() -> None:
    if DynamoDBBackend.transact_write_items is _transact_write_items:
        return
    dynamodb_models.__dict__["copy"] = _TablesAreNotCopied
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _one_at_a_time(getattr(DynamoDBBackend, name)))
    DynamoDBStreamsBackend.get_records = _one_at_a_time(  # type: ignore[method-assign]
        DynamoDBStreamsBackend.get_records
    )


def apply() -> None:
    FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]
    _patch_dynamodb()
