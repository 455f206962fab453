"""The API's OpenAPI document: generated from the routes and their pydantic models,
valid against the OpenAPI specification, and complete."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.support.api import Api, api_stack
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext


@pytest.fixture
def api(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with api_stack(monkeypatch) as stack:
        yield stack


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    event = load_event("api/health.json")  # no token: the document is public
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/openapi.json"
    answer = api.send(event)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    document: dict[str, Any] = json.loads(answer.text)
    return document


# The routes issue 7 asks for (GET /openapi.json serves the document, outside it).
ISSUE_ROUTES = {
    ("post", "/uploads"),
    ("get", "/photos"),
    ("get", "/photos/{photo_id}"),
    ("get", "/photos/{photo_id}/url"),
    ("delete", "/photos/{photo_id}"),
    ("post", "/drafts/{draft_id}/publish"),
    ("get", "/stats"),
    ("get", "/stats/breakdown"),
    ("get", "/metrics/lifecycle"),
    ("get", "/metrics/recommendations"),
    ("get", "/workload"),
    ("get", "/users/me/usage"),
    ("get", "/tiers"),
    ("get", "/buckets"),
    ("post", "/lifecycle/run"),
    ("post", "/lifecycle/reschedule"),
    ("post", "/capacity/run"),
    ("post", "/cleanup/old-images"),
    ("get", "/reconcile"),
    ("post", "/reconcile"),
    ("get", "/cleanup"),
    ("post", "/cleanup/redrive"),
    ("get", "/health"),
    ("get", "/dashboard"),
    # Issue 21: shelflife recommend's pricing, drawn on the dashboard.
    ("put", "/pricing"),
    ("get", "/pricing"),
    # Issue 22: exports, the audit trail.
    ("get", "/photos/export"),
    ("get", "/photos/{photo_id}/history"),
    ("get", "/audit"),
    # Issue 22, part 5: importing an existing bucket.
    ("post", "/imports"),
    # Issue 23, part 4: an upload's outcome.
    ("get", "/uploads/{upload_id}"),
    # Issue 23, part 2: sized variants.
    ("get", "/photos/{photo_id}/image"),
    # Issue 23, part 3: the gallery page.
    ("get", "/gallery"),
}


def routes(app: ModuleType) -> set[tuple[str, str]]:
    """Every (method, path) the resolver routes, in OpenAPI's path syntax."""
    found = set()
    for route in app.app._static_routes + app.app._dynamic_routes:
        if not route.include_in_schema:
            continue
        path = re.sub(r"<(\w+)>", r"{\1}", route.openapi_path)
        found.add((route.method.lower(), path))
    return found


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["info"]["title"] == "shelflife"


def test_every_route_of_the_code_is_in_the_document(api: Api, document: dict[str, Any]) -> None:
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert routes(api.app) == documented
    assert documented == ISSUE_ROUTES


def test_routes_need_the_bearer_token_except_health_and_the_gallery(
    document: dict[str, Any],
) -> None:
    assert document["components"]["securitySchemes"]["jwt"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            public = "security" not in operation
            # The gallery's page holds no data: its script sends the token.
            assert public == (path in ("/health", "/gallery")), (method, path)


def test_errors_are_documented_with_their_shape(document: dict[str, Any]) -> None:
    upload = document["paths"]["/uploads"]["post"]
    assert {"400", "401", "403", "413", "422"} <= set(upload["responses"])
    schema = upload["responses"]["422"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ErrorResponse")
    body = upload["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/UploadRequest")


def test_the_documented_content_types_are_the_ones_ingest_reads() -> None:
    from typing import get_args

    from functions.api.schemas import UploadRequest
    from shelflife.services.photos import CONTENT_TYPES

    documented = set(get_args(UploadRequest.model_fields["content_type"].annotation))
    assert documented == set(CONTENT_TYPES)


def test_the_document_is_browsable_at_docs_without_a_token(
    api: Api, document: dict[str, Any]
) -> None:
    """Issue 23, part 5: Powertools' Swagger UI, public as the document is, its script
    inlined (no CDN) and gzipped; ``?format=json`` is the same document."""
    event = load_event("api/health.json")  # no token
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/docs"
    event["headers"]["accept-encoding"] = "gzip"
    response = api.app.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "text/html"
    assert response["headers"]["Content-Encoding"] == "gzip"
    page = gzip.decompress(base64.b64decode(response["body"])).decode()
    assert "SwaggerUIBundle" in page
    assert "https://" not in page.split("<body>", 1)[0], "nothing loaded from elsewhere"
    event["queryStringParameters"] = {"format": "json"}
    event["rawQueryString"] = "format=json"
    del event["headers"]["accept-encoding"]
    answer = api.send(event)
    assert answer.status == 200
    assert json.loads(answer.text)["paths"].keys() == document["paths"].keys()
