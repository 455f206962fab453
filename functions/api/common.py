"""What every router of the api shares: the settings, the services (handed to each
request through the resolver's context), the caller, and the documented answers."""

from __future__ import annotations

import json
from typing import Any, cast

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from shelflife.domain.auth import Caller, caller_from_claims
from shelflife.domain.settings import Settings
from shelflife.wiring import ApiServices

from .schemas import ErrorResponse, GatewayError

settings = Settings.from_env()

# Documented with every route: the errors it may answer.
ERRORS: dict[int, Any] = {
    status: {
        "description": description,
        # The gateway answers 401 itself when the token is missing or invalid.
        "content": {
            "application/json": {
                "model": ErrorResponse | GatewayError if status == 401 else ErrorResponse
            }
        },
    }
    for status, description in (
        (400, "Invalid request"),
        (401, "No valid token"),
        (403, "Not allowed (admin route, quota)"),
        (404, "No such photo or route"),
        (409, "Conflicts with what is stored"),
        (413, "Declared size over the limit"),
        (415, "Body not JSON"),
        (422, "Request does not match the schema"),
        (503, "Try again later"),
    )
}


def answers(model: type | None, status: int = 200) -> dict[int, Any]:
    """A route's documented responses: its success (the model it returns) and the
    errors any route may answer. (Given ``responses``, Powertools documents only
    those, so the success is listed here too.)"""
    content: dict[str, Any] = (
        {"model": model} if model is not None else {"schema": {"type": "object"}}
    )
    return {status: {"description": "Success", "content": {"application/json": content}}, **ERRORS}


# Every route but the public ones takes the bearer token (the document says so per
# operation: Powertools leaves an empty ``security`` out).
TOKEN: list[dict[str, list[str]]] = [{"jwt": []}]
# The routes template.yaml leaves without the authorizer.
PUBLIC_ROUTES = {
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/gallery"),
}


def error_body(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def error(status: int, code: str, message: str) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=error_body(code, message),
    )


def services(router: BaseRouter) -> ApiServices:
    """The services of this invocation (``app.lambda_handler`` puts them in the context)."""
    return cast(ApiServices, router.context["services"])


def event(router: BaseRouter) -> APIGatewayProxyEventV2:
    # The api's resolver is the HTTP API's: its events are v2 requests.
    return cast(APIGatewayProxyEventV2, router.current_event)


def caller(router: BaseRouter) -> Caller:
    context = event(router).request_context
    authorizer = context.authorizer
    claims = authorizer.jwt_claim if authorizer is not None else None
    scopes = authorizer.jwt_scopes if authorizer is not None else None
    return caller_from_claims(claims, scopes, settings)


def admin(router: BaseRouter) -> Caller:
    who = caller(router)
    who.require_admin()
    return who


def request_id(router: BaseRouter) -> str:
    return str(event(router).request_context.request_id or "unknown")
