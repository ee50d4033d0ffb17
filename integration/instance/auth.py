"""Authentication for the instance: Basic credentials and OAuth bearer tokens.

``/oauth_token.do`` implements the password and refresh_token grants. Access
tokens live ``instance.oauth_token_lifetime`` seconds (1800 by default, as on
the platform), refresh tokens 100 days. Tokens are kept in memory only, so a
restart signs every OAuth client out.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

REFRESH_LIFETIME = 8_640_000


@dataclass
class Grant:
    """An issued access token and the refresh token that renews it."""

    user_name: str
    client_id: str
    access_token: str
    refresh_token: str
    expires_at: float
    refresh_expires_at: float


class TokenRegistry:
    """Issues, refreshes and checks OAuth tokens; thread-safe."""

    def __init__(self, lifetime: int, *, clock: Callable[[], float] = time.time) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._by_access: dict[str, Grant] = {}
        self._by_refresh: dict[str, Grant] = {}

    def issue(self, user_name: str, client_id: str) -> Grant:
        """Return the user's still-valid token for this client, or a new one."""
        now = self._clock()
        with self._lock:
            for grant in self._by_access.values():
                same_owner = (grant.user_name, grant.client_id) == (user_name, client_id)
                if same_owner and grant.expires_at > now:
                    return grant
            grant = Grant(user_name, client_id, secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                          now + self.lifetime, now + REFRESH_LIFETIME)
            self._by_access[grant.access_token] = grant
            self._by_refresh[grant.refresh_token] = grant
        return grant

    def refresh(self, refresh_token: str, client_id: str) -> Grant | None:
        """Return a new access token for a valid refresh token, or None."""
        now = self._clock()
        with self._lock:
            old = self._by_refresh.get(refresh_token)
            if old is None or old.client_id != client_id or old.refresh_expires_at <= now:
                return None
            self._by_access.pop(old.access_token, None)
            old.access_token = secrets.token_urlsafe(32)
            old.expires_at = now + self.lifetime
            self._by_access[old.access_token] = old
        return old

    def user_for(self, access_token: str) -> str | None:
        """Return the user name of a valid access token, or None when unknown or expired."""
        with self._lock:
            grant = self._by_access.get(access_token)
        if grant is None or grant.expires_at <= self._clock():
            return None
        return grant.user_name

    def expire_all(self) -> None:
        """Expire every access token now (refresh tokens stay valid)."""
        with self._lock:
            for grant in self._by_access.values():
                grant.expires_at = 0.0

    def response(self, grant: Grant, *, with_refresh: bool) -> dict:
        """Return the token endpoint's JSON response for a grant."""
        body = {
            "scope": "useraccount",
            "token_type": "Bearer",
            "expires_in": max(int(grant.expires_at - self._clock()) - 1, 0),
            "access_token": grant.access_token,
        }
        if with_refresh:
            body["refresh_token"] = grant.refresh_token
        return body


def parse_basic(header: str) -> tuple[str, str] | None:
    """Return (user, password) from a ``Basic`` Authorization header, or None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, separator, password = decoded.partition(":")
    return (user, password) if separator else None


def parse_bearer(header: str) -> str | None:
    """Return the token of a ``Bearer`` Authorization header, or None."""
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
