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

moto's server finds the service of every request by listing its own package folder
(``moto.backends.list_of_moto_modules``: a directory listing and 200 ``isdir`` calls,
twice a request, under the server's one lock). The folder does not change while the
process runs, so the patch lists it once.

moto's SQS ``ReceiveMessage`` checks each message it hands out against the queue's
retention period by building every attribute of the queue, message counts included,
each a pass over every message: with a backlog of a thousand uploads, tens of thousands
of steps per message received. The patch reads the one attribute it needs.

moto's DynamoDB ``Query`` starts from every item of the table, sorted by key, even when
it asks for one partition of the table itself, and sorts again what it keeps: each query
costs a sort of the whole table, which made ingest slow down as the load run's table
grew (40 % of moto's time at 2,000 uploads). During a query the patch hands moto the
asked partition alone, or for an index every item unsorted: the query's own sort (by
the index's keys, then the table's) puts them in the same order.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Callable
from typing import Any

from moto import backends as moto_backends
from moto.core.utils import unix_time
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket
from moto.sqs.models import Message, SQSBackend


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
    Table.query = _query  # type: ignore[method-assign]
    Table.all_items = _all_items  # type: ignore[method-assign]


# ---- DynamoDB queries -------------------------------------------------------------------

_QUERY = threading.local()
_ORIGINAL_QUERY = Table.query
_ORIGINAL_ALL_ITEMS = Table.all_items
_INDEX_NAME = 7  # Table.query's positional arguments: hash_key, ..., index_name


def _query(self: Table, *args: Any, **kwargs: Any) -> Any:
    index_name = args[_INDEX_NAME] if len(args) > _INDEX_NAME else kwargs.get("index_name")
    _QUERY.scope = (self, None if index_name else args[0])
    try:
        return _ORIGINAL_QUERY(self, *args, **kwargs)
    finally:
        _QUERY.scope = None


def _all_items(self: Table) -> Any:
    scope = getattr(_QUERY, "scope", None)
    if scope is None or scope[0] is not self:
        return _ORIGINAL_ALL_ITEMS(self)
    _, hash_key = scope
    partitions = list(self.items.values()) if hash_key is None else [self.items.get(hash_key)]
    if self.range_key_attr is None:
        return [item for item in partitions if item is not None]
    return [item for partition in partitions if partition for item in partition.values()]


# ---- SQS retention --------------------------------------------------------------------


def _within_retention(self: SQSBackend, queue_name: str, message: Message) -> bool:
    retention = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    return retention + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]


# ---- the server's service lookup --------------------------------------------------

_MOTO_MODULES: tuple[str, ...] = tuple(moto_backends.list_of_moto_modules())


def _listed_once() -> tuple[str, ...]:
    return _MOTO_MODULES


def apply() -> None:
    FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]
    _patch_dynamodb()
    moto_backends.list_of_moto_modules = _listed_once
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
