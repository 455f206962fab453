"""The shelflife HTTP API from Python: what the ``shelflife`` command (and the local
stack's demo) use, against the local stack or a deployed one.

Uploads go the way a browser's do: ask the API for a presigned POST, post the file
straight to the upload bucket, then wait for ingest to place it. A photo's id is known
before it exists: ingest names an owner's image by the SHA-256 of its bytes
(``shelflife.services.ingest.image_id``), so the client waits for exactly that id.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests

from shelflife.services.ingest import image_id

# What a browser would declare for these extensions (the API refuses other types).
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
SAFE_NAME = re.compile(r"[^A-Za-z0-9 ._()+-]")


class ApiError(Exception):
    """The API answered an error: its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status = status
        self.code = code
        self.message = message


class Unreachable(Exception):
    """Nothing answers at the API's address."""


@dataclass(frozen=True)
class UploadResult:
    path: Path
    photo_id: str
    bytes_in: int
    photo: dict[str, Any] | None  # None: not placed before the timeout
    # The caller's photo these bytes already were (the id is the owner's and the
    # bytes' hash): the upload was folded into it, nothing new is stored.
    duplicate_of: str | None = None
    # Why the API or the upload bucket refused the file before ingest saw it.
    refused: str | None = None

    @property
    def placed(self) -> bool:
        return self.photo is not None

    @property
    def outcome(self) -> str:
        """stored, duplicate, rejected (by ingest, with its reason), refused (before
        ingest), or waiting (not placed in time)."""
        if self.refused is not None:
            return "refused"
        if self.photo is None:
            return "waiting"
        if self.photo["state"] == "rejected":
            return "rejected"
        return "duplicate" if self.duplicate_of else "stored"

    @property
    def ok(self) -> bool:
        return self.outcome in ("stored", "duplicate")


def upload_filename(path: Path) -> str:
    """The file's name as the API accepts it (letters, digits, space, ._()+-)."""
    name = SAFE_NAME.sub("_", path.name).lstrip("._ -+()") or "upload"
    return name[:200]


def content_type(path: Path) -> str:
    return (
        CONTENT_TYPES.get(path.suffix.lower())
        or mimetypes.guess_type(path.name)[0]
        or ("application/octet-stream")
    )


class ApiClient:
    def __init__(self, base_url: str, token: str | None, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()

    @property
    def user(self) -> str | None:
        """The token's subject (read, not verified: the API verifies it)."""
        if not self.token:
            return None
        claims = jwt.decode(self.token, options={"verify_signature": False})
        subject = claims.get("sub")
        return str(subject) if subject else None

    # ---- requests ------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The API's answer; ``ApiError`` for an error, ``Unreachable`` for none."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = self.session.request(
                method, f"{self.base_url}{path}", headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.ConnectionError as e:
            raise Unreachable(f"no API answers at {self.base_url}") from e
        if response.status_code >= 400:
            try:
                error = response.json().get("error") or {}
            except ValueError:
                error = {}
            raise ApiError(
                response.status_code,
                str(error.get("code", "http_error")),
                str(error.get("message", response.text[:200] or response.reason)),
            )
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body or {})

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def fetch(self, url: str) -> requests.Response:
        """A URL the API handed out (a signed object URL): its bytes, no token sent."""
        try:
            response = self.session.get(url, timeout=self.timeout)
        except requests.ConnectionError as e:
            raise Unreachable(f"nothing answers at {url.split('?', 1)[0]}") from e
        if response.status_code >= 400:
            raise ApiError(response.status_code, "download_failed", response.text[:200])
        return response

    # ---- photos --------------------------------------------------------------------

    def export_pages(
        self, export_format: str, *, page_size: int = 500, **filters: Any
    ) -> Iterator[str]:
        """``GET /photos/export``, page after page (the cursor in ``X-Next-Cursor``):
        each page's body as the API wrote it."""
        cursor = None
        while True:
            params = {**filters, "format": export_format, "limit": page_size, "cursor": cursor}
            query = {k: v for k, v in params.items() if v is not None}
            response = self._send("GET", "/photos/export", params=query)
            yield response.text
            cursor = response.headers.get("X-Next-Cursor")
            if not cursor:
                return

    def photos(self, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.get("/photos", limit=page_size, cursor=cursor)
            yield from page["items"]
            cursor = page.get("cursor")
            if not cursor:
                return

    def upload(
        self,
        path: Path,
        *,
        draft_id: str | None = None,
        labels: dict[str, str] | None = None,
        wait: float = 60.0,
        on_progress: Callable[[str], None] | None = None,
    ) -> UploadResult:
        """Upload one file as a browser would and wait (up to ``wait`` seconds) until
        ingest has placed it or rejected it."""
        data = path.read_bytes()
        body: dict[str, Any] = {
            "filename": upload_filename(path),
            "content_type": content_type(path),
            "size": len(data),
        }
        if draft_id:
            body["draft_id"] = draft_id
        if labels:
            body["labels"] = labels
        user = self.user
        if user is None:
            raise ApiError(401, "unauthenticated", "a token with a subject is needed to upload")
        photo_id = image_id(user, hashlib.sha256(data).hexdigest())
        before = self._photo(photo_id)
        duplicate_of = photo_id if before is not None and before["state"] == "active" else None
        try:
            ticket = self.post("/uploads", body)
        except ApiError as e:
            if e.status >= 500:
                raise
            return UploadResult(path, photo_id, len(data), None, refused=str(e))
        try:
            posted = self.session.post(
                ticket["url"],
                data=ticket["fields"],
                files={"file": (body["filename"], data, body["content_type"])},
                timeout=self.timeout,
            )
        except requests.ConnectionError as e:
            raise Unreachable(f"the upload bucket at {ticket['url']} does not answer") from e
        if posted.status_code >= 300:
            refusal = f"the upload bucket answered {posted.status_code}: {posted.text[:300]}"
            return UploadResult(path, photo_id, len(data), None, refused=refusal)
        if on_progress:
            on_progress("uploaded")
        deadline = time.monotonic() + wait
        while True:
            # The same bytes seen before (stored, or rejected) meet the same record: the
            # upload is folded into it, or refused again for the same reason.
            photo = before if before is not None else self._photo(photo_id)
            if photo is not None and photo["state"] != "pending":
                return UploadResult(path, photo_id, len(data), photo, duplicate_of)
            if time.monotonic() > deadline:
                return UploadResult(path, photo_id, len(data), photo, duplicate_of)
            time.sleep(0.2)

    def _photo(self, photo_id: str) -> dict[str, Any] | None:
        try:
            photo: dict[str, Any] = self.get(f"/photos/{photo_id}")
        except ApiError as e:
            if e.status != 404:
                raise
            return None
        return photo
