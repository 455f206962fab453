"""Who is calling: the identity API Gateway's JWT authorizer verified.

The HTTP API checks the token's signature, issuer, audience and expiry before the api
function runs, and hands over its claims (``requestContext.authorizer.jwt``). The
caller is the token's ``sub``; an admin is a caller in the admin group (Cognito's
``cognito:groups`` claim, or a plain ``groups`` claim) or holding the admin scope.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shelflife.errors import Forbidden, NotAuthenticated
from shelflife.settings import Settings
from shelflife.uploads import PLAIN_ID

GROUP_CLAIMS = ("cognito:groups", "groups")


@dataclass(frozen=True)
class Caller:
    user_id: str
    admin: bool = False

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden("this route is for administrators", code="admin_only")


def claim_values(value: Any) -> list[str]:
    """A list claim as API Gateway passes it on: a JSON list, or flattened into a
    string (``"[admin editors]"``), or a space- or comma-separated string."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [item for item in re.split(r"[\s,]+", text) if item]


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
    groups = {group for name in GROUP_CLAIMS for group in claim_values((claims or {}).get(name))}
    granted = set(scopes or ()) | set(claim_values((claims or {}).get("scope")))
    admin = settings.admin_group in groups or settings.admin_scope in granted
    return Caller(user_id=subject, admin=admin)
