"""Reading records back from the table's stream: what the cleanup dead-letter queue's
redrive needs for the failures Lambda itself reported.

When an invocation fails as a whole (a timeout, a crash), Lambda's on-failure
destination receives where the batch was (shard, first and last sequence number), not
its records. The stream keeps records for 24 hours; within them, the batch is read
again here. Errors stop here as elsewhere: records no longer in the stream are
``RecordsExpired``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shelflife.domain.errors import BackendUnavailable, RecordsExpired, Throttled

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

_GONE = {"TrimmedDataAccessException", "ResourceNotFoundException", "ExpiredIteratorException"}
_THROTTLING = {"ThrottlingException", "LimitExceededException"}
# A batch Lambda hands a function holds at most 10,000 records; a bound on the reads.
_MAX_READS = 100


def lambda_shape(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A record as GetRecords returns it through boto3, in the shape (and JSON types)
    Lambda delivers to a function: the stream's ARN added, the creation time in epoch
    seconds rather than a datetime."""
    images = dict(record["dynamodb"])
    created = images.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        images["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "dynamodb": images, "eventSourceARN": stream_arn}


class TableStream:
    def __init__(self, *, client: DynamoDBStreamsClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> DynamoDBStreamsClient:
        if self._client is None:
            self._client = boto3.client("dynamodbstreams")
        return self._client

    def batch(self, info: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The records of a batch as Lambda's on-failure record describes it
        (``DDBStreamBatchInfo``), in the shape Lambda delivers them."""
        try:
            stream_arn, shard = info["streamArn"], info["shardId"]
            first, last = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
        except (KeyError, TypeError, ValueError) as e:
            raise RecordsExpired(f"not a stream batch description: {e}") from e
        records: list[dict[str, Any]] = []
        try:
            iterator: str | None = self.client.get_shard_iterator(
                StreamArn=stream_arn,
                ShardId=shard,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=str(first),
            )["ShardIterator"]
            for _ in range(_MAX_READS):
                if iterator is None:
                    break
                response = self.client.get_records(ShardIterator=iterator, Limit=1000)
                page = response.get("Records", [])
                for record in page:
                    if int(record["dynamodb"]["SequenceNumber"]) > last:
                        return records
                    records.append(lambda_shape(record, stream_arn))
                if not page:
                    break  # the shard's end so far
                iterator = response.get("NextShardIterator")
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in _GONE:
                raise RecordsExpired(f"stream records {first}..{last}: {code}") from e
            if code in _THROTTLING:
                raise Throttled(f"stream: {code}", backend="dynamodbstreams") from e
            raise BackendUnavailable(f"stream: {code or e}", backend="dynamodbstreams") from e
        except BotoCoreError as e:
            raise BackendUnavailable(f"stream: {e}", backend="dynamodbstreams") from e
        return records
