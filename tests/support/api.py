"""The api function under moto, for tests: requests built from the sample events in
events/api/ with the JWT authorizer's claims, and the lifecycle, capacity, cleanup, import and
ingest handlers behind its admin routes, invoked in-process as Lambda would."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import boto3
import pytest

from shelflife.adapters.backends import S3Backend
from shelflife.adapters.invocation import InProcessInvoker
from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.domain.records import ImageState
from shelflife.domain.storage import BucketPolicy
from shelflife.services.operations import Operations
from shelflife_tools.local.streams import StreamMapping
from tests.conftest import REGION
from tests.support.corpus import corpus_file
from tests.support.events import load_event, s3_put_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.template import create_table_from_template
from tests.unit.test_ingest_handler import ENVIRONMENT, TABLE, TEMP, UPLOADS

AUDIT_TABLE = f"{TABLE}-audit"
__all__ = ["COLD", "HOT", "OTHER_PHOTO", "PHOTO", "TEMP", "UPLOADS", "Answer", "Api", "api_stack"]

HOT = ENVIRONMENT["SHELFLIFE_HOT_BUCKET"]
COLD = ENVIRONMENT["SHELFLIFE_COLD_BUCKET"]
PHOTO = "photos/concert.jpg"
OTHER_PHOTO = "photos/flowers.jpeg"
FUNCTIONS = {
    "SHELFLIFE_LIFECYCLE_FUNCTION_NAME": "lifecycle",
    "SHELFLIFE_CAPACITY_FUNCTION_NAME": "capacity",
    "SHELFLIFE_CLEANUP_FUNCTION_NAME": "cleanup",
    "SHELFLIFE_IMPORT_FUNCTION_NAME": "imports",
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Api:
    app: ModuleType
    functions: dict[str, ModuleType]
    repository: DynamoRepository
    s3: S3Backend
    known: set[str]
    # The audit function on the table's stream, as the template maps it.
    audit: StreamMapping

    def call(
        self,
        method: str,
        path: str,
        *,
        user: str | None = "alice",
        admin: bool = False,
        body: Any = None,
        query: dict[str, str] | None = None,
        raw_body: str | None = None,
    ) -> Answer:
        """A request as the HTTP API passes it on, from the sample event: the caller's
        claims as the JWT authorizer verified them (none for ``user=None``)."""
        event = load_event("api/get-photos.json")
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
        if raw_body is not None or body is not None:
            event["body"] = raw_body if raw_body is not None else json.dumps(body)
            event["headers"]["content-type"] = "application/json"
        if user is None:
            del event["requestContext"]["authorizer"]
            del event["headers"]["authorization"]
        else:
            claims = {"sub": user}
            if admin:
                claims["cognito:groups"] = "[admin]"
            event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
        return self.send(event)

    def send(self, event: dict[str, Any]) -> Answer:
        response = self.app.lambda_handler(event, FakeLambdaContext())
        return Answer(response["statusCode"], response.get("headers", {}), response["body"])

    def upload(
        self,
        user: str = "alice",
        name: str = PHOTO,
        draft_id: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> str:
        """An upload as a browser makes it (the presigned POST's key and fields), then
        ingest's event for it; the new photo's id."""
        body: dict[str, Any] = {"filename": "photo.jpg", "content_type": "image/jpeg"}
        if draft_id:
            body["draft_id"] = draft_id
        if labels:
            body["labels"] = labels
        ticket = self.call("POST", "/uploads", user=user, body=body)
        assert ticket.status == 201, ticket.text
        form = ticket.json
        metadata = {
            k.removeprefix("x-amz-meta-"): v
            for k, v in form["fields"].items()
            if k.startswith("x-amz-meta-")
        }
        self.s3.put(
            UPLOADS,
            form["key"],
            corpus_file(name),
            content_type=form["fields"]["Content-Type"],
            metadata=metadata,
        )
        self.functions["ingest"].lambda_handler(
            s3_put_event(UPLOADS, form["key"]), FakeLambdaContext()
        )
        (image,) = [
            i
            for i in self.repository.images_by_owner(user, limit=100).items
            if i.state is ImageState.ACTIVE and i.id not in self.known
        ]
        self.known.add(image.id)
        return image.id


def _forget(name: str) -> None:
    """Every module of function ``name`` (the api's are several), so the next import
    reads the environment again."""
    package = f"functions.{name}"
    for module in [m for m in sys.modules if m.startswith(f"{package}.")]:
        sys.modules.pop(module, None)


def _import(name: str) -> ModuleType:
    _forget(name)
    return importlib.import_module(f"functions.{name}.app")


@contextmanager
def api_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The api function and the functions it invokes, on a fresh table and buckets
    (call inside moto)."""
    dead_letters = boto3.client("sqs", region_name=REGION).create_queue(QueueName="dlq")
    for name, value in {
        **ENVIRONMENT,
        **FUNCTIONS,
        # Every tier on moto's S3 here: the backends' own suites cover R2 and B2.
        "SHELFLIFE_COLD_BACKEND": "s3",
        "SHELFLIFE_CLEANUP_DEAD_LETTER_QUEUE_URL": dead_letters["QueueUrl"],
        "SHELFLIFE_AUDIT_TABLE_NAME": AUDIT_TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    create_table_from_template(TABLE)
    create_table_from_template(AUDIT_TABLE, logical="AuditTable")
    s3 = S3Backend(region=REGION)
    s3.create_bucket(UPLOADS, BucketPolicy(tier="upload"))
    for name, tier in ((TEMP, "temp"), (HOT, "hot"), (COLD, "cold")):
        s3.create_bucket(name, BucketPolicy(tier=tier))
    functions = {
        name: _import(name)
        for name in ("ingest", "lifecycle", "capacity", "cleanup", "audit", "imports")
    }
    app = _import("api")
    invoker = InProcessInvoker(
        {name: module.lambda_handler for name, module in functions.items()},
        context_factory=FakeLambdaContext,
    )
    operations = Operations(app.settings, invoker)
    monkeypatch.setattr(app, "services", replace(app.services, operations=operations))
    audit = StreamMapping.from_template(
        TABLE,
        functions["audit"].lambda_handler,
        on_failure_queue_url=dead_letters["QueueUrl"],
        region=REGION,
        name="AuditStreamMapping",
    )
    yield Api(app, functions, DynamoRepository(TABLE, region=REGION), s3, set(), audit)
    for name in (*functions, "api"):
        _forget(name)
