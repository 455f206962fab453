"""The api's errors: every one answers ``{"error": {"code", "message"}}`` with its
status, never a stack trace; a bug answers 500 with a request id to find it in the logs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Route
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from shelflife.domain.errors import (
    Conflict,
    Forbidden,
    InvalidArgument,
    NotAuthenticated,
    OperationFailed,
    RecordNotFound,
    ShelflifeError,
    StorageError,
    TooLarge,
)

from .common import error
from .gate import refusal

logger = Logger(child=True)


def register(app: APIGatewayHttpResolver) -> None:
    """Answer every error of ``app``'s routes in the one shape."""

    def request_id() -> str:
        return str(app.current_event.request_context.request_id or "unknown")

    def invalid_request(e: RequestValidationError) -> Response[str]:
        problems = []
        for item in e.errors():
            where = ".".join(str(part) for part in item.get("loc", ()))
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
        return error(422, "validation_failed", "; ".join(problems) or "invalid request")

    def known_error(e: ShelflifeError) -> Response[str]:
        if isinstance(e, NotAuthenticated):
            return error(401, "unauthenticated", str(e))
        if isinstance(e, Forbidden):
            return error(403, e.code, str(e))
        if isinstance(e, RecordNotFound):
            return error(404, "not_found", str(e))
        if isinstance(e, Conflict):
            return error(409, "conflict", str(e))
        if isinstance(e, TooLarge):
            return error(413, "too_large", str(e))
        if isinstance(e, InvalidArgument):
            return error(400, "invalid_argument", str(e))
        if isinstance(e, OperationFailed):
            logger.error("operation failed", extra={"error": str(e)})
            return error(502, "operation_failed", str(e))
        if isinstance(e, StorageError) and e.retryable:
            # A provider's answer (DynamoDB's, S3's) stays in the log: not for the caller.
            logger.warning("temporarily unavailable", extra={"error": str(e)})
            message = f"the store is busy or unavailable; try again (request {request_id()})"
            return error(503, "unavailable", message)
        if e.retryable:
            logger.warning("temporarily unavailable", extra={"error": str(e)})
            return error(503, "unavailable", str(e))
        logger.exception("unexpected shelflife error")
        return error(500, "internal", f"internal error (request {request_id()})")

    def unsupported_type(e: RequestUnsupportedContentType) -> Response[str]:
        return error(415, "unsupported_media_type", "request bodies are JSON (application/json)")

    def undecodable_body(e: UnicodeDecodeError) -> Response[str]:
        # A base64 body that is not UTF-8 text (Powertools decodes it before validation).
        return error(400, "invalid_body", "the request body is not UTF-8 text (JSON expected)")

    def unexpected_error(e: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return error(500, "internal", f"internal error (request {request_id()})")

    # Registered without the decorator syntax: Powertools' decorator is untyped.
    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(ShelflifeError)(known_error)
    app.exception_handler(UnicodeDecodeError)(undecodable_body)
    app.exception_handler(RequestUnsupportedContentType)(unsupported_type)
    app.exception_handler(Exception)(unexpected_error)

    @app.not_found
    def no_route(e: NotFoundError) -> Response[str]:
        event = app.current_event
        # A path a static route names belongs to its static routes alone.
        allowed = _methods(app._static_routes, event.path) or _methods(
            app._dynamic_routes, event.path
        )
        if allowed:
            answer = error(
                405, "method_not_allowed", _takes(event.path, allowed, event.http_method)
            )
            answer.headers["Allow"] = ", ".join(allowed)
            return answer
        return error(404, "no_route", f"no route {event.http_method} {event.path}")


def _methods(routes: Sequence[Route], path: str) -> list[str]:
    return sorted({route.method for route in routes if route.rule.match(path)})


def _takes(path: str, allowed: Sequence[str], method: str) -> str:
    return f"{path} takes {', '.join(allowed)}, not {method}"


def wrong_method(app: APIGatewayHttpResolver, event: dict[str, Any]) -> dict[str, Any] | None:
    """The 405 for a method that a path named by a static route does not take, before
    the resolver would hand ``DELETE /photos/export`` to ``DELETE /photos/<photo_id>``
    (the 405 of ``no_route`` gives such a path its static routes' methods alone)."""
    http = (event.get("requestContext") or {}).get("http") or {}
    path, method = str(http.get("path", "")), str(http.get("method", ""))
    allowed = _methods(app._static_routes, path)
    if not allowed or method in allowed:
        return None
    answer = refusal(405, "method_not_allowed", _takes(path, allowed, method))
    answer["headers"]["Allow"] = ", ".join(allowed)
    return answer
