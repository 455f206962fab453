"""The local stack's token issuer: JWTs signed with a secret of its own, checked the way
the HTTP API's JWT authorizer checks a provider's tokens (signature, issuer, audience,
expiry), so requests reach the api function with the same claims as in AWS.

The secret lives in the local stack's folder, so ``shelflife local token`` in another
terminal mints tokens the running stack accepts.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jwt

from shelflife_tools.local.gateway import Identity

ISSUER = "https://shelflife.local"
AUDIENCE = "shelflife-local"
ALGORITHM = "HS256"
ADMIN_GROUP = "admin"
DEFAULT_LIFETIME = 12 * 3600


@dataclass(frozen=True)
class TokenIssuer:
    secret: str
    issuer: str = ISSUER
    audience: str = AUDIENCE

    @classmethod
    def in_folder(cls, folder: Path) -> TokenIssuer:
        """The issuer whose secret is kept in ``folder`` (made on first use)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "token-secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return cls(secret=path.read_text().strip())

    def token(
        self,
        user: str,
        *,
        admin: bool = False,
        lifetime: int = DEFAULT_LIFETIME,
        extra: Mapping[str, object] | None = None,
    ) -> str:
        """A token for ``user``; ``extra`` claims as an IdP might add them (groups)."""
        now = int(time.time())
        claims: dict[str, object] = {
            "sub": user,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + lifetime,
            "token_use": "access",
        }
        if admin:
            # As Cognito puts groups in its tokens (and API Gateway passes them on).
            claims["cognito:groups"] = [ADMIN_GROUP]
        claims.update(extra or {})
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def authorize(self, header: str | None) -> Identity | None:
        """The identity of a request's ``Authorization: Bearer <token>``, or None for a
        missing, forged, expired or foreign token (the authorizer's 401)."""
        if not header or not header.lower().startswith("bearer "):
            return None
        try:
            claims = jwt.decode(
                header[7:].strip(),
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["sub", "exp", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        # API Gateway hands every list claim to the function flattened: "[admin editors]".
        flattened = {
            name: "[" + " ".join(str(item) for item in value) + "]"
            if isinstance(value, list)
            else value
            for name, value in claims.items()
        }
        return Identity(claims=flattened)
