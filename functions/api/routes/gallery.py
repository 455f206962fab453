"""GET /gallery: a signed-in user's page (``functions/api/gallery.py``)."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter as Router

from ..common import settings
from ..gallery import content_security_policy, render

# Powertools' Router constructor carries no annotations.
router = Router()  # type: ignore[no-untyped-call]
# The page is the same for everyone and each deployment: made once per container.
PAGE = render(settings)
POLICY = content_security_policy(settings)


@router.get(
    "/gallery",
    summary="Your photos in a browser: a grid of thumbnails, drag-and-drop upload, "
    "publish, download, delete, usage (public HTML; its script uses your token)",
    tags=["public"],
    responses={200: {"description": "The page", "content": {"text/html": {"schema": {}}}}},
)
def show_gallery() -> Response[str]:
    return Response(
        status_code=HTTPStatus.OK,
        content_type="text/html; charset=utf-8",
        body=PAGE,
        headers={
            "Content-Security-Policy": POLICY,
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
        },
    )
