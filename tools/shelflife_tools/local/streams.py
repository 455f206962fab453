"""Lambda's event source mapping for the table's stream, played (by the local stack and
the tests) as template.yaml declares it (``CleanupStreamMapping``): its filter criteria, batch size,
retries, bisection and on-failure destination, over moto's DynamoDB stream.

What Lambda does, in the parts the cleanup function relies on: records in order per
shard, only those some filter matches, in batches of ``BatchSize``; a partial batch
response retries from the first failed record; an invocation that raises is split in
two (``BisectBatchOnFunctionError``) or retried; after ``MaximumRetryAttempts`` the
batch's description goes to the on-failure destination and the shard moves on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from moto.events.models import EventPattern

from shelflife.adapters.streams import lambda_shape
from shelflife_tools.local.context import LocalContext
from shelflife_tools.template import TEMPLATE, resource

Handler = Callable[[dict[str, Any], Any], Any]


def _sequence(record: dict[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


@dataclass
class StreamMapping:
    stream_arn: str
    handler: Handler
    # The on-failure destination (an SQS queue URL in moto).
    on_failure_queue_url: str
    batch_size: int
    max_retries: int
    bisect: bool
    patterns: list[EventPattern]
    region: str
    invocations: int = 0
    _positions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_template(
        cls,
        table_name: str,
        handler: Handler,
        *,
        on_failure_queue_url: str,
        region: str,
        name: str = "CleanupStreamMapping",
        template: Path = TEMPLATE,
    ) -> StreamMapping:
        properties = resource(name, template)["Properties"]
        stream_arn = boto3.client("dynamodb", region_name=region).describe_table(
            TableName=table_name
        )["Table"]["LatestStreamArn"]
        return cls(
            stream_arn=stream_arn,
            handler=handler,
            on_failure_queue_url=on_failure_queue_url,
            batch_size=properties["BatchSize"],
            max_retries=properties["MaximumRetryAttempts"],
            bisect=properties["BisectBatchOnFunctionError"],
            patterns=[
                EventPattern(f["Pattern"], json.loads(f["Pattern"]))
                for f in properties["FilterCriteria"]["Filters"]
            ],
            region=region,
        )

    def matches(self, record: dict[str, Any]) -> bool:
        event: Any = record  # moto types its events as EventBridge's; the matching is the same
        return any(pattern.matches_event(event) for pattern in self.patterns)

    def rewind(self) -> None:
        """Read the stream from its start again at the next poll (a replay)."""
        self._positions.clear()

    def poll(self) -> int:
        """Deliver every record that arrived since the last poll; how many matched."""
        delivered = 0
        for shard, records in self._read().items():
            matching = [r for r in records if self.matches(r)]
            delivered += len(matching)
            for start in range(0, len(matching), self.batch_size):
                self._deliver(matching[start : start + self.batch_size], shard)
            if records:
                self._positions[shard] = records[-1]["dynamodb"]["SequenceNumber"]
        return delivered

    # ---- reading -----------------------------------------------------------------

    @cached_property
    def _streams(self) -> Any:
        # Made once: a client costs more to build than a poll of an idle stream.
        return boto3.client("dynamodbstreams", region_name=self.region)

    def _read(self) -> dict[str, list[dict[str, Any]]]:
        client = self._streams
        shards = client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        found: dict[str, list[dict[str, Any]]] = {}
        for shard in shards:
            shard_id = shard["ShardId"]
            after = self._positions.get(shard_id)
            if after:
                iterator: str | None = client.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard_id,
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    SequenceNumber=after,
                )["ShardIterator"]
            else:
                iterator = client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            records: list[dict[str, Any]] = []
            while iterator:
                response = client.get_records(ShardIterator=iterator, Limit=1000)
                page = response.get("Records", [])
                if not page:
                    break
                records += [json.loads(json.dumps(lambda_shape(r, self.stream_arn))) for r in page]
                iterator = response.get("NextShardIterator")
            found[shard_id] = records
        return found

    # ---- delivering --------------------------------------------------------------

    def _deliver(self, batch: list[dict[str, Any]], shard: str) -> None:
        attempts = 0
        while batch:
            attempts += 1
            self.invocations += 1
            try:
                response = self.handler({"Records": batch}, LocalContext())
            except Exception:
                if self.bisect and len(batch) > 1:
                    middle = len(batch) // 2
                    self._deliver(batch[:middle], shard)
                    self._deliver(batch[middle:], shard)
                    return
                failed_from = _sequence(batch[0])
            else:
                failures = (response or {}).get("batchItemFailures", [])
                if not failures:
                    return
                failed_from = min(int(item["itemIdentifier"]) for item in failures)
            batch = [record for record in batch if _sequence(record) >= failed_from]
            if attempts > self.max_retries:
                self._give_up(batch, shard, attempts)
                return

    def _give_up(self, batch: list[dict[str, Any]], shard: str, attempts: int) -> None:
        now = datetime.now(UTC).isoformat()
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": LocalContext().invoked_function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "version": "1.0",
            "timestamp": now,
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": now,
                "approximateArrivalOfLastRecord": now,
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }
        boto3.client("sqs", region_name=self.region).send_message(
            QueueUrl=self.on_failure_queue_url, MessageBody=json.dumps(message)
        )
