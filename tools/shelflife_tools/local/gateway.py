"""API Gateway HTTP API, locally: requests as the v2 events the api function receives
from the real gateway (payload format 2.0, the shape of ``sam local generate-event
apigateway http-api-proxy``), and a small HTTP server on 127.0.0.1 that answers with
the function's responses.

The server plays the JWT authorizer's part through ``authorize``: given the request's
``Authorization`` header it returns the token's claims and scopes, or None, in which
case a route that needs a token answers 401 before the function runs, as the real
gateway does. Tests pass a table of tokens; the local stack its own issuer.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]
# What the stack serves itself beside the API, by path prefix (a provider's download
# endpoint the local stack stands in for): the path and query to status, headers, body.
Files = Callable[[str, Mapping[str, str]], tuple[int, Mapping[str, str], bytes]]
# What the stack does on request beside the API (local controls: its clock), by path:
# the JSON body to the JSON answer. Any token of the stack's issuer may ask.
Control = Callable[[Mapping[str, Any]], Mapping[str, Any]]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """What the JWT authorizer passes on for a valid token."""

    claims: Mapping[str, Any]
    scopes: tuple[str, ...] = ()


Authorize = Callable[[str | None], Identity | None]
# The routes the template leaves without the authorizer.
PUBLIC_ROUTES = frozenset({"GET /health", "GET /openapi.json", "GET /docs", "GET /gallery"})


def http_api_event(
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | Mapping[str, Any] | list[Any] | None = None,
    identity: Identity | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """One request as API Gateway HTTP API hands it to a Lambda proxy integration
    (``$default`` route, so every path reaches the function's own router)."""
    raw_query = "&".join(f"{key}={value}" for key, value in (query or {}).items())
    all_headers = {key.lower(): value for key, value in (headers or {}).items()}
    encoded = False
    text: str | None
    if body is None:
        text = None
    elif isinstance(body, bytes):
        text, encoded = base64.b64encode(body).decode(), True
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body)
        all_headers.setdefault("content-type", "application/json")
    now = datetime.now(UTC)
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": "127.0.0.1",
        "domainPrefix": "local",
        "http": {
            "method": method.upper(),
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": all_headers.get("user-agent", "shelflife"),
        },
        "requestId": request_id or uuid.uuid4().hex,
        "routeKey": "$default",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if identity is not None:
        context["authorizer"] = {
            "jwt": {"claims": dict(identity.claims), "scopes": list(identity.scopes) or None}
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": all_headers,
        "requestContext": context,
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if text is not None:
        event["body"] = text
    return event


def response_body(response: Mapping[str, Any]) -> bytes:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        return base64.b64decode(body)
    return str(body).encode()


class LocalGateway:
    """An HTTP server on 127.0.0.1 in front of ``handler``, like the HTTP API."""

    def __init__(
        self,
        handler: Handler,
        authorize: Authorize,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_routes: Collection[str] = PUBLIC_ROUTES,
        context_factory: Callable[[], Any] | None = None,
        query_tokens: bool = False,
        files: Mapping[str, Files] | None = None,
        controls: Mapping[str, Control] | None = None,
    ) -> None:
        self.handler = handler
        self.files = dict(files or {})
        self.controls = dict(controls or {})
        # Whether ``?access_token=`` stands in for the header (the local stack's links
        # to the dashboard; the real HTTP API takes the header only).
        self.query_tokens = query_tokens
        self.authorize = authorize
        self.public_routes = frozenset(public_routes)
        self.context_factory = context_factory or (lambda: None)
        # One request at a time: the handler's module state is one Lambda environment,
        # and Powertools' resolver keeps the current event in a class attribute (one
        # per process), so two requests at once would read each other's caller.
        self._lock = threading.Lock()
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            # Keep-alive, as API Gateway offers: every answer has its content-length.
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                gateway._serve(self)

            # Every method reaches the function, as the $default route does.
            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_"):
                    return self.do_GET
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet; the function logs what matters

        self.server = ThreadingHTTPServer((host, port), RequestHandler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalGateway:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        method = request.command.upper()
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else None
        if "transfer-encoding" in request.headers:
            # A body this server does not read: the connection cannot carry another.
            request.close_connection = True
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        served = next(
            (f for prefix, f in self.files.items() if parts.path.startswith(prefix)), None
        )
        if served is not None and method in ("GET", "HEAD"):
            status, headers, content = served(parts.path, query)
            self._reply(request, status, headers, b"" if method == "HEAD" else content)
            return
        header = request.headers.get("authorization")
        if header is None and self.query_tokens and "access_token" in query:
            # A browser tab cannot send a header: locally, the link may carry the token.
            header = f"Bearer {query.pop('access_token')}"
        identity = self.authorize(header)
        control = self.controls.get(parts.path) if method == "POST" else None
        if control is not None and identity is not None:
            self._control(request, control, body)
            return
        if identity is None and f"{method} {parts.path}" not in self.public_routes:
            self._reply(
                request, 401, {"content-type": "application/json"}, b'{"message":"Unauthorized"}'
            )
            return
        event = http_api_event(
            method,
            parts.path,
            query=query,
            headers=dict(request.headers.items()),
            body=_text_or_bytes(body, request),
            identity=identity,
        )
        try:
            with self._lock:
                response = self.handler(event, self.context_factory())
        except Exception:
            # What API Gateway answers when the integration fails; the handler's own
            # errors are its business, this keeps the server up.
            logger.exception("the handler failed")
            self._reply(
                request,
                500,
                {"content-type": "application/json"},
                b'{"message":"Internal Server Error"}',
            )
            return
        headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        self._reply(request, int(response.get("statusCode", 200)), headers, response_body(response))

    def _control(
        self, request: BaseHTTPRequestHandler, control: Control, body: bytes | None
    ) -> None:
        json_type = {"content-type": "application/json"}
        try:
            asked = json.loads(body or b"{}")
            if not isinstance(asked, dict):
                raise ValueError("not an object")
            answer = control(asked)
        except (ValueError, TypeError) as e:
            error = {"error": {"code": "invalid_request", "message": str(e)}}
            self._reply(request, 400, json_type, json.dumps(error).encode())
            return
        self._reply(request, 200, json_type, json.dumps(answer).encode())

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str], body: bytes
    ) -> None:
        request.send_response(status)
        for key, value in headers.items():
            if key != "content-length":
                request.send_header(key, value)
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


def _text_or_bytes(body: bytes | None, request: BaseHTTPRequestHandler) -> bytes | str | None:
    """A text body as text (API Gateway passes JSON and text as they are), anything
    else, or text that is not UTF-8, base64-encoded."""
    kind = request.headers.get("content-type", "")
    if body is None or not kind.startswith(("application/json", "text/")):
        return body
    try:
        return body.decode()
    except UnicodeDecodeError:
        return body


def bearer_tokens(tokens: Mapping[str, Identity]) -> Authorize:
    """An authorizer that knows a fixed set of tokens (for tests)."""

    def authorize(header: str | None) -> Identity | None:
        if not header or not header.lower().startswith("bearer "):
            return None
        return tokens.get(header[7:].strip())

    return authorize
