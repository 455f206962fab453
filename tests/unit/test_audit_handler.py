"""functions/audit/app.py under moto, driven by the events in events/audit/."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from shelflife.adapters.table.audit import DynamoAuditLog
from shelflife.domain.records import ChangeAction
from tests.conftest import REGION
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.template import create_table_from_template, resource
from tests.unit.test_ingest_handler import ENVIRONMENT

AUDIT = "shelflife-test-audit"
IMAGE = "3f2c9a1b7d4e4c0f8a6b5d2e1c0f9a8b"


@pytest.fixture
def audit(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    for name, value in {**ENVIRONMENT, "SHELFLIFE_AUDIT_TABLE_NAME": AUDIT}.items():
        monkeypatch.setenv(name, value)
    create_table_from_template(AUDIT, logical="AuditTable")
    sys.modules.pop("functions.audit.app", None)
    yield importlib.import_module("functions.audit.app")
    sys.modules.pop("functions.audit.app", None)


def test_a_stamped_soft_delete_is_one_entry_however_often_it_arrives(audit: ModuleType) -> None:
    event = load_event("audit/stream-soft-delete.json")
    for _ in range(3):  # the stream delivers at least once
        answer = audit.lambda_handler(event, FakeLambdaContext())
        assert answer == {"batchItemFailures": []}

    page = DynamoAuditLog(AUDIT, region=REGION).history(IMAGE, limit=10, cursor=None)
    [entry] = page.items
    assert entry.action is ChangeAction.DELETED
    assert entry.actor == "user:alice"
    assert entry.reason == "by its owner"
    assert entry.before is not None
    assert entry.before.tier.value == "hot"
    assert entry.after is None
    assert entry.expires_at is not None
    assert (entry.expires_at - entry.at).days == 365


def test_a_removed_record_makes_no_entry(audit: ModuleType) -> None:
    # The TTL's removal of a record whose deletion was entered: the mapping's filter
    # keeps it from the function, and the function makes nothing of it either.
    event = load_event("audit/stream-remove.json")
    pattern = json.loads(
        resource("AuditStreamMapping")["Properties"]["FilterCriteria"]["Filters"][0]["Pattern"]
    )
    assert pattern["eventName"] == ["INSERT", "MODIFY"]
    audit.lambda_handler(event, FakeLambdaContext())
    image_id = event["Records"][0]["dynamodb"]["OldImage"]["id"]["S"]
    log = DynamoAuditLog(AUDIT, region=REGION)
    assert log.history(image_id, limit=10, cursor=None).items == []


def test_a_record_that_is_no_image_change_fails_nothing(audit: ModuleType) -> None:
    event = load_event("audit/stream-soft-delete.json")
    event["Records"][0]["dynamodb"] = {"Keys": "not a key"}
    answer = audit.lambda_handler(event, FakeLambdaContext())
    assert answer == {"batchItemFailures": []}
    assert DynamoAuditLog(AUDIT, region=REGION).history(IMAGE, limit=10, cursor=None).items == []
