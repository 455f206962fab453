"""The B2 simulator's files over HTTP, as B2's download endpoint serves a bucket's files:
``GET /_b2/file/<bucket>/<key>?Authorization=<token>``, answered by the local stack's
gateway (``LocalGateway``'s ``files``). b2sdk's simulator hands out URLs on
``download.example.com``, where nothing answers; the B2 adapter's ``download_base``
points its presigned URLs here instead.

The token must be the one the adapter signs for that file (the simulator's tokens
name the bucket and the key prefix, and carry no expiry, so none is checked here).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from shelflife.adapters.backends import B2Backend
from shelflife.domain.errors import ShelflifeError

B2_DOWNLOADS = "/_b2"


def _token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query).get("Authorization", [""])[0].rsplit("_", 1)[0]


def b2_download(path: str, query: Mapping[str, str]) -> tuple[int, Mapping[str, str], bytes]:
    """The file ``path`` names, if ``query`` carries a token for it."""
    rest = path.removeprefix(f"{B2_DOWNLOADS}/file/")
    bucket, _, encoded = rest.partition("/")
    key = unquote(encoded)
    if not bucket or not key:
        return _error(404, "not_found", f"no file named by {path}")
    backend = B2Backend.shared_simulator()
    try:
        # What the adapter signs for this file, less the duration the simulator adds.
        expected = _token_of(backend.presigned_get_url(bucket, key, expires_in=60))
        stored = backend.get(bucket, key)
    except ShelflifeError:
        return _error(404, "not_found", f"no file {key} in {bucket}")
    given = query.get("Authorization", "").rsplit("_", 1)[0]
    if not given or given != expected:
        return _error(401, "bad_auth_token", "the Authorization does not grant this file")
    headers = {"content-type": stored.info.content_type or "application/octet-stream"}
    return 200, headers, stored.data


def _error(status: int, code: str, message: str) -> tuple[int, Mapping[str, str], bytes]:
    body = f'{{"status": {status}, "code": "{code}", "message": "{message}"}}'
    return status, {"content-type": "application/json"}, body.encode()
