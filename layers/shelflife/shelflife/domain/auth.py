"""Who is calling: the identity API Gateway's JWT authorizer verified.

The HTTP API checks the token's signature, issuer, audience and expiry before the api
function runs, and hands over its claims (``requestContext.authorizer.jwt``). The
caller is the token's ``sub``; an admin is a caller in the admin group (Cognito's
``cognito:groups`` claim, or a plain ``groups`` claim) or holding the admin scope.

Admin comes only from an unambiguous match. API Gateway flattens a list claim into
``"[a b]"``, so a group named "Marketing admin" and the two groups "Marketing" and
"admin" arrive as the same text. Cognito group names cannot contain white space (its
API's GroupName pattern), so ``cognito:groups`` splits on spaces without ambiguity; any
other IdP's ``groups`` claim counts only as a real list, a JSON list, or when the admin
group is the whole claim (``"admin"``, ``"[admin]"``). Commas never separate: "x,admin"
is one name. OAuth scopes are space-separated by definition (RFC 6749, 3.3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shelflife.domain.errors import Forbidden, NotAuthenticated
from shelflife.domain.settings import Settings
from shelflife.domain.uploads import PLAIN_ID

# Each group claim, and whether spaces separate its names unambiguously.
GROUP_CLAIMS = {"cognito:groups": True, "groups": False}


@dataclass(frozen=True)
class Caller:
    user_id: str
    admin: bool = False

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden("this route is for administrators", code="admin_only")


def claim_values(value: Any, *, spaces_separate: bool) -> list[str]:
    """The names a list claim holds, as far as they can be told apart: a list, a JSON
    list in a string, or API Gateway's flattened ``"[a b]"`` (split on spaces only when
    ``spaces_separate``; else the whole text is one name)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    text = str(value).strip()
    if text.startswith('["'):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return [str(item) for item in parsed]
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1].strip()
    if not text:
        return []
    return text.split() if spaces_separate else [text]


def caller_from_claims(
    claims: Mapping[str, Any] | None, scopes: Sequence[str] | None, settings: Settings
) -> Caller:
    """The caller of a request whose token has ``claims`` (and ``scopes``, which HTTP
    APIs list apart). ``NotAuthenticated`` without a subject: the authorizer lets no
    such request through, so only a misconfigured route gets here."""
    subject = (claims or {}).get("sub")
    if not subject:
        raise NotAuthenticated("this route needs a bearer token with a subject (sub)")
    subject = str(subject)
    if not PLAIN_ID.match(subject):
        raise Forbidden(
            "the token's subject is not a usable user id (1-128 letters, digits or ._@+-)",
            code="bad_subject",
        )
    groups = {
        group
        for name, spaces_separate in GROUP_CLAIMS.items()
        for group in claim_values((claims or {}).get(name), spaces_separate=spaces_separate)
    }
    granted = set(scopes or ()) | set(
        claim_values((claims or {}).get("scope"), spaces_separate=True)
    )
    admin = settings.admin_group in groups or settings.admin_scope in granted
    return Caller(user_id=subject, admin=admin)
