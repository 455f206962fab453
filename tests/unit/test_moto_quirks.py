"""The local stack's patches of moto (shelflife_tools.local.moto_quirks) keep what AWS
promises: a cancelled transaction leaves no item and no stream record behind, a
successful one writes every item and streams each change; queries of a partition or of
an index return the items, order and pages DynamoDB returns; SQS still drops messages
past the queue's retention period."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from shelflife_tools.local import moto_quirks
from tests.conftest import REGION

TABLE = "quirks"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_table(
            client,
            TABLE,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        client.put_item(TableName=TABLE, Item=_item("a", n="1"))
        yield client


def _create_table(
    client: Any, name: str, *, more_attributes: tuple[str, ...] = (), **options: Any
) -> None:
    """A table keyed by string ``pk`` and ``sk``, as shelflife's is."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": attribute, "AttributeType": "S"}
            for attribute in ("pk", "sk", *more_attributes)
        ],
        BillingMode="PAY_PER_REQUEST",
        **options,
    )


def _item(pk: str, **values: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "x"}, **{k: {"N": v} for k, v in values.items()}}


def _stream(client: Any) -> list[str]:
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return [r["eventName"] for r in streams.get_records(ShardIterator=iterator)["Records"]]


def _transaction(n_of_a: str) -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": TABLE, "Item": _item("b", n="2")}},
        {
            "Update": {
                "TableName": TABLE,
                "Key": {"pk": {"S": "a"}, "sk": {"S": "x"}},
                "UpdateExpression": "SET n = :new",
                "ConditionExpression": "n = :old",
                "ExpressionAttributeValues": {":new": {"N": "5"}, ":old": {"N": n_of_a}},
            }
        },
    ]


def test_a_cancelled_transaction_leaves_no_item_and_no_stream_record(dynamodb: Any) -> None:
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(TransactItems=_transaction(n_of_a="9"))

    key = {"pk": {"S": "b"}, "sk": {"S": "x"}}
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key=key)
    a = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "a"}, "sk": {"S": "x"}})["Item"]
    assert a["n"] == {"N": "1"}
    assert _stream(dynamodb) == ["INSERT"]


def test_a_transaction_writes_every_item_and_streams_each_change(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=_transaction(n_of_a="1"))

    a = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "a"}, "sk": {"S": "x"}})["Item"]
    assert a["n"] == {"N": "5"}
    assert "Item" in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "b"}, "sk": {"S": "x"}})
    assert _stream(dynamodb) == ["INSERT", "INSERT", "MODIFY"]


# ---- queries ---------------------------------------------------------------------------

INDEXED = "quirks-indexed"


@pytest.fixture
def indexed() -> Iterator[Any]:
    """A table with an index, its items written in a shuffled order."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_table(
            client,
            INDEXED,
            more_attributes=("g", "d"),
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_g",
                    "KeySchema": [
                        {"AttributeName": "g", "KeyType": "HASH"},
                        {"AttributeName": "d", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        items = [(f"p{p}", f"s{s:02d}") for p in range(4) for s in range(12)]
        random.Random(5).shuffle(items)
        for number, (pk, sk) in enumerate(items):
            item = {"pk": {"S": pk}, "sk": {"S": sk}}
            if number % 5:  # a sparse index: some items are not in it
                # Ties on the index's range key, broken by the table's keys.
                item |= {"g": {"S": f"g{number % 2}"}, "d": {"S": f"d{number % 3}"}}
            client.put_item(TableName=INDEXED, Item=item)
        yield client


def _pages(client: Any, **query: Any) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    pages = client.get_paginator("query").paginate(
        TableName=INDEXED, PaginationConfig={"PageSize": 5}, **query
    )
    for page in pages:
        keys += [(item["pk"]["S"], item["sk"]["S"]) for item in page["Items"]]
    return keys


@pytest.mark.parametrize("forward", [True, False])
def test_a_partition_query_pages_through_its_items_in_key_order(
    indexed: Any, forward: bool
) -> None:
    found = _pages(
        indexed,
        KeyConditionExpression="pk = :p AND sk > :s",
        ExpressionAttributeValues={":p": {"S": "p2"}, ":s": {"S": "s03"}},
        ScanIndexForward=forward,
    )

    expected = [("p2", f"s{s:02d}") for s in range(4, 12)]
    assert found == (expected if forward else expected[::-1])
    missing = _pages(
        indexed,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "nobody"}},
    )
    assert missing == []


def test_an_index_query_pages_in_index_order_then_table_order(indexed: Any) -> None:
    every = indexed.scan(TableName=INDEXED)["Items"]
    expected = sorted(
        (item["d"]["S"], item["pk"]["S"], item["sk"]["S"])
        for item in every
        if item.get("g", {}).get("S") == "g1"
    )

    found = _pages(
        indexed,
        IndexName="by_g",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "g1"}},
    )

    assert len(every) == 48
    assert len(found) == len(expected) > 10
    assert found == [(pk, sk) for _, pk, sk in expected]


def test_a_scan_still_sees_the_whole_table_in_key_order(indexed: Any) -> None:
    items = indexed.scan(TableName=INDEXED)["Items"]

    keys = [(item["pk"]["S"], item["sk"]["S"]) for item in items]
    assert keys == sorted(keys)
    assert len(keys) == 48


# ---- SQS retention -------------------------------------------------------------------


def test_a_message_past_the_queue_retention_is_not_received() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="kept", Attributes={"MessageRetentionPeriod": "60"})[
            "QueueUrl"
        ]
        sqs.send_message(QueueUrl=url, MessageBody="fresh")
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["fresh"]

        from moto.sqs.models import sqs_backends

        backend = sqs_backends["123456789012"][REGION]
        [message] = backend.get_queue("kept")._messages
        assert moto_quirks._within_retention(backend, "kept", message)
        message.sent_timestamp -= 61_000  # type: ignore[operator,assignment]  # 61 s earlier
        assert not moto_quirks._within_retention(backend, "kept", message)
