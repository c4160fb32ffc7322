"""Key material derived from ``PAYDESK_SECRET_KEY``, and digests of bearer secrets.

One secret, several purposes: each derived key is bound to its purpose, so a
value made for one (a CSRF token) is useless for another (an audit digest).
Session ids, API tokens and recovery codes are 128+ bits of randomness; a keyed
HMAC-SHA-256 of them is what the database keeps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

from paydesk.errors import ConfigurationError
from paydesk.settings import Settings


def _master(settings: Settings) -> bytes:
    if settings.secret_key is None:
        raise ConfigurationError(
            "PAYDESK_SECRET_KEY", f"required for admin sign-in in {settings.env}"
        )
    return settings.secret_key.get_secret_value().encode()


def derived_key(settings: Settings, purpose: str) -> bytes:
    """A 32-byte key for ``purpose``, derived from the master secret."""
    return hmac.new(_master(settings), f"paydesk:{purpose}".encode(), hashlib.sha256).digest()


def keyed_digest(settings: Settings, purpose: str, value: str) -> str:
    """Hex HMAC-SHA-256 of ``value`` under the key for ``purpose``."""
    return hmac.new(derived_key(settings, purpose), value.encode(), hashlib.sha256).hexdigest()


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random string with ``nbytes`` bytes of entropy."""
    return secrets.token_urlsafe(nbytes)


def _fernet(settings: Settings) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derived_key(settings, "totp-seed")))


def encrypt(settings: Settings, plaintext: str) -> str:
    """Authenticated encryption (Fernet) of a small secret such as a TOTP seed."""
    return _fernet(settings).encrypt(plaintext.encode()).decode()


def decrypt(settings: Settings, ciphertext: str) -> str:
    """The plaintext of ``encrypt``; ``ConfigurationError`` if the key changed."""
    try:
        return _fernet(settings).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise ConfigurationError(
            "PAYDESK_SECRET_KEY", "cannot decrypt a stored two-factor seed: was the key changed?"
        ) from exc
