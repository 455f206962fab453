"""api: the HTTP API (API Gateway HTTP API, JWT authorizer in front).

The resolver is here; its routes are Powertools Routers in ``routes/`` (uploads,
photos, stats, admin, dashboard), each calling a service of the layer that the wiring
built (``PhotoService``, ``StatsService``, ``Operations`` for the admin runs, which the
functions that own them execute, ``CleanupService.health``). Request bodies, query and
path parameters are validated by Powertools against the pydantic models of
``schemas.py``, which also make the OpenAPI document (``GET /openapi.json``, and
browsable through Swagger UI at ``GET /docs``).

Errors (``errors.py``, and ``gate.py`` before the resolver) answer
``{"error": {"code", "message"}}`` with 400/401/403/404/405/409/413/415/422/502/503,
never a stack trace; a bug answers 500 with a request id to find it in the logs.
Events: API Gateway HTTP API v2 requests (events/api/).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shelflife import __version__, wiring

from . import errors
from .common import settings
from .gate import refused
from .routes import admin, audit, dashboard, gallery, photos, stats, uploads
from .schemas import Health

services = wiring.api(settings)
logger = Logger()
metrics = Metrics()
tracer = Tracer()
app = APIGatewayHttpResolver(enable_validation=True)
app.configure_openapi(
    title="shelflife",
    version=__version__,
    description="A serverless image store that keeps itself cheap and healthy.",
    security_schemes={"jwt": HTTPBearer(bearerFormat="JWT")},
)
# The same document browsable at /docs (public, as /openapi.json is): Powertools'
# Swagger UI, its script and style inlined in the page, so it needs nothing from a CDN
# (the local stack's machine may have no internet); gzipped, as the page is 1.5 MB.
app.enable_swagger(
    path="/docs",
    title="shelflife",
    version=__version__,
    description="A serverless image store that keeps itself cheap and healthy.",
    security_schemes={"jwt": HTTPBearer(bearerFormat="JWT")},
    compress=True,
)
errors.register(app)
for group in (uploads, photos, audit, stats, admin, dashboard, gallery):
    app.include_router(group.router)


@app.get("/health", summary="Liveness", tags=["public"])
def health() -> Health:
    return Health(status="ok", version=__version__)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(
        status_code=200, content_type="application/json", body=app.get_openapi_json_schema()
    )


@logger.inject_lambda_context(clear_state=True, correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    refusal = refused(event) or errors.wrong_method(app, event)
    if refusal is not None:
        return refusal
    # The routers read this invocation's services from the context (the resolver
    # clears it after each request).
    app.context["services"] = services
    return app.resolve(event, context)
