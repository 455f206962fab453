"""Refusals answered before the resolver runs, in the same shape as every other error.

Not Powertools middleware: the resolver validates a request (and parses its body)
before any middleware registered with ``app.use`` runs, so a 401, 415 or 400 decided
there would come after the 422 or the 500 it exists to prevent.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .common import PUBLIC_ROUTES, error_body


def refused(event: dict[str, Any]) -> dict[str, Any] | None:
    """The first refusal that applies to ``event``, or None: the resolver takes it."""
    return (
        without_identity(event)
        or not_json(event)
        or unreadable_json(event)
        or empty_parameters(event)
    )


def empty_parameters(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 422 for ``?days=``: Powertools would take an empty value for an absent one
    (the default); no parameter of this API has a meaning when empty."""
    empty = sorted(k for k, v in (event.get("queryStringParameters") or {}).items() if v == "")
    if not empty:
        return None
    message = "; ".join(f"query.{name}: empty value" for name in empty)
    return refusal(422, "validation_failed", message)


def not_json(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 415 for a body that is not JSON: every route's body is, and Powertools'
    multipart parser raises a bare ValueError on a boundary-less form (a 500)."""
    if not event.get("body"):
        return None
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    kind = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return None
    message = f"request bodies are JSON (application/json), not {kind}"
    return refusal(415, "unsupported_media_type", message)


def unreadable_json(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 400 for a JSON body Python's parser cannot take: nested deeper than its
    recursion limit (a RecursionError), an integer of more than 4,300 digits (a
    ValueError). Powertools would parse it in the resolver, and either was a 500."""
    body = event.get("body")
    if not body:
        return None
    try:
        text = base64.b64decode(body).decode() if event.get("isBase64Encoded") else body
        json.loads(text)
    except (RecursionError, ValueError, UnicodeError) as e:
        # A UnicodeDecodeError is a ValueError too; a JSON syntax error is left to the
        # resolver's validation (a 422 naming where), as before.
        if isinstance(e, json.JSONDecodeError):
            return None
        what = "nested too deeply" if isinstance(e, RecursionError) else "not readable JSON"
        return refusal(400, "invalid_body", f"the request body is {what}")
    return None


def refusal(status: int, code: str, message: str) -> dict[str, Any]:
    """An error answered before the resolver runs, in the same shape as ``error``."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": error_body(code, message),
        "isBase64Encoded": False,
    }


def without_identity(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 401 for a request to a route that needs a token and came without one. The
    gateway's authorizer already refuses those; this holds if a route is ever left
    open by mistake, and answers before the body is validated (a 422 would tell an
    anonymous caller more than "log in")."""
    context = event.get("requestContext") or {}
    route = ((context.get("http") or {}).get("method"), event.get("rawPath"))
    if route in PUBLIC_ROUTES:
        return None
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
    if claims.get("sub"):
        return None
    return refusal(401, "unauthenticated", "this route needs a bearer token")
