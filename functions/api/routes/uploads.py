"""POST /uploads: a presigned POST straight to the upload bucket; GET /uploads/{id}:
what became of it."""

from __future__ import annotations

from dataclasses import asdict

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter as Router

from ..common import TOKEN, answers, caller, services
from ..schemas import UploadRequest, UploadResponse, UploadStatusResponse

# Powertools' Router constructor carries no annotations.
router = Router()  # type: ignore[no-untyped-call]


@router.post(
    "/uploads",
    security=TOKEN,
    summary="A presigned POST for one upload to the upload bucket",
    status_code=201,
    tags=["photos"],
    responses=answers(UploadResponse, 201),
)
def create_upload(request: UploadRequest) -> UploadResponse:
    ticket = services(router).photos.create_upload(
        caller(router),
        filename=request.filename,
        content_type=request.content_type,
        size=request.size,
        draft_id=request.draft_id,
        labels=request.labels,
    )
    return UploadResponse(
        upload_id=ticket.upload_id,
        key=ticket.key,
        url=ticket.form.url,
        fields=ticket.form.fields,
        max_bytes=ticket.max_bytes,
        expires_at=ticket.expires_at,
    )


@router.get(
    "/uploads/<upload_id>",
    security=TOKEN,
    summary="What became of an upload: pending, stored as a photo, a duplicate, rejected",
    tags=["photos"],
    responses=answers(UploadStatusResponse),
)
def upload_status(upload_id: str) -> UploadStatusResponse:
    status = services(router).photos.upload_status(caller(router), upload_id)
    return UploadStatusResponse(**asdict(status))
