"""The app's signed-in users, from the JWT the app issues them.

HS256 with a shared secret (``PAYDESK_JWT_SECRET``) or asymmetric keys from a
JWKS URL (``PAYDESK_JWT_JWKS_URL``); issuer and audience checked when
configured; ``exp`` required; the user id comes from a configurable claim.
Unsigned tokens (``alg: none``) never pass: the accepted algorithms are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from paydesk.errors import AuthenticationRequired, ServiceUnavailable
from paydesk.settings import Settings

ASYMMETRIC_ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA"]


@dataclass(frozen=True)
class AppUser:
    """A signed-in app user."""

    user_id: str
    email: str | None


class AppTokenVerifier:
    """Verifies app tokens for one configuration (built once per app)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwks = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300, timeout=5)
            if settings.jwt_jwks_url
            else None
        )

    @property
    def configured(self) -> bool:
        """Whether any way of verifying tokens is configured."""
        return self._jwks is not None or self._settings.jwt_secret is not None

    def _key_and_algorithms(self, token: str) -> tuple[Any, list[str]]:
        if self._jwks is not None:
            try:
                return self._jwks.get_signing_key_from_jwt(token).key, ASYMMETRIC_ALGORITHMS
            except jwt.PyJWKClientConnectionError as exc:
                raise ServiceUnavailable(
                    "The token keys (JWKS) cannot be fetched.", code="jwks_unavailable"
                ) from exc
            except jwt.PyJWKClientError as exc:
                raise AuthenticationRequired(
                    "The token is signed with an unknown key.", code="invalid_token"
                ) from exc
        secret = self._settings.jwt_secret
        assert secret is not None  # checked by ``configured``
        return secret.get_secret_value(), ["HS256"]

    def verify(self, token: str) -> AppUser:
        """The user a valid token names, or ``AuthenticationRequired``."""
        if not self.configured:
            raise ServiceUnavailable(
                "App sign-in is not configured (PAYDESK_JWT_SECRET or PAYDESK_JWT_JWKS_URL).",
                code="app_auth_not_configured",
            )
        settings = self._settings
        try:
            key, algorithms = self._key_and_algorithms(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                options={
                    "require": ["exp"],
                    "verify_aud": settings.jwt_audience is not None,
                    "verify_iss": settings.jwt_issuer is not None,
                },
                leeway=30,
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationRequired("The token has expired.", code="token_expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationRequired(
                "The token is for another audience.", code="invalid_token"
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationRequired("The token is not valid.", code="invalid_token") from exc
        user_id = claims.get(settings.jwt_user_claim)
        if not isinstance(user_id, str | int) or not str(user_id):
            raise AuthenticationRequired(
                f"The token has no {settings.jwt_user_claim!r} claim.", code="invalid_token"
            )
        email = claims.get(settings.jwt_email_claim)
        return AppUser(user_id=str(user_id), email=email if isinstance(email, str) else None)
