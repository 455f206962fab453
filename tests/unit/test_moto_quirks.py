"""The local stack's patch of moto's DynamoDB transactions (shelflife_tools.local.
moto_quirks) keeps what DynamoDB promises: a cancelled transaction leaves no item and no
stream record behind; a successful one writes every item and streams each change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.conftest import REGION

TABLE = "quirks"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        client.put_item(TableName=TABLE, Item=_item("a", n="1"))
        yield client


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
