"""Agent authentication: the platform's JWT, checked on every widget and API request.

The platform mints a short-lived JWT for the agent who opens a form
(``sn_auth.GlideJWTAPI().generateJWT`` with a JWT provider) and puts it in
the widget's iframe URL. The sidecar checks the signature (HS256 with
``auth.jwt_secret`` or RS256 with ``auth.jwt_public_key_file``), ``exp``,
``nbf``, ``iat``, ``iss``, ``aud`` and a maximum lifetime, then looks the
agent up in ``sys_user`` and checks their roles. Token handling itself is in
``inward.tokens``; its public names are re-exported here.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from flask import current_app, g, request

from inward.tokens import (
    DEFAULT_TOKEN_LIFETIME,
    AuthError,
    TokenBindings,
    TokenVerifier,
    load_verification_key,
    mint_token,
)

if TYPE_CHECKING:
    from integration.schemas import Agent

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "AgentDirectory",
    "AuthError",
    "TokenBindings",
    "TokenVerifier",
    "authenticate_request",
    "load_verification_key",
    "mint_token",
    "read_request_token",
    "require_admin",
    "require_agent",
    "resolve_agent_on_platform",
]

TOKEN_QUERY_PARAMETER = "token"
# Beyond this many cached agents, expired entries are dropped on the next insert.
AGENT_CACHE_PRUNE_SIZE = 10_000


class AgentDirectory:
    """Look agents up by user_name, caching each result for ``ttl`` seconds.

    ``resolve`` raises ``integration.errors.RecordNotFound`` for an unknown or
    inactive user; misses are not cached, so a user created a moment ago can
    sign in at once.
    """

    def __init__(self, resolve: Callable[[str], Agent], *, ttl: float, clock: Callable[[], float] = time.monotonic):
        self._resolve = resolve
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Agent]] = {}
        self._lock = threading.Lock()

    def get(self, user_name: str) -> Agent:
        """Return the agent with this user_name, from the cache while it is fresh."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(user_name)
        if cached is not None and cached[0] > now:
            return cached[1]
        agent = self._resolve(user_name)
        with self._lock:
            if len(self._cache) >= AGENT_CACHE_PRUNE_SIZE:
                self._cache = {name: entry for name, entry in self._cache.items() if entry[0] > now}
            self._cache[user_name] = (now + self._ttl, agent)
        return agent

    def forget(self, user_name: str | None = None) -> None:
        """Drop one cached agent, or all of them."""
        with self._lock:
            if user_name is None:
                self._cache.clear()
            else:
                self._cache.pop(user_name, None)


def client_fingerprint() -> str:
    """Return the SHA-256 hex of the request's client address and User-Agent."""
    identity = f"{request.remote_addr}\n{request.user_agent.string}"
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def resolve_agent_on_platform(records: Any, user_name: str) -> Agent:
    """Read the agent's sys_user record, roles and groups through the platform client."""
    from integration.tables import get_agent

    return get_agent(records, user_name=user_name)


def read_request_token() -> str:
    """Return the token from ``Authorization: Bearer`` or the ``token`` query parameter."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError(
                "invalid_authorization_header",
                "The Authorization header must be 'Bearer <token>'.",
            )
        return value.strip()
    token = request.args.get(TOKEN_QUERY_PARAMETER, "")
    if not token:
        raise AuthError(
            "missing_token",
            "No token given; send 'Authorization: Bearer <token>' or open the widget from the platform form.",
        )
    return token


def authenticate_request(*, roles: list[str]) -> Agent:
    """Verify the request's token, resolve the agent and check they hold one of ``roles``."""
    from integration.errors import InvalidQueryValue, RecordNotFound

    services = current_app.extensions["inward"]
    token = read_request_token()
    claims = services.verifier.verify(token)
    user_name = claims[services.settings.auth.user_claim]
    if services.settings.auth.jti_replay == "bind":
        services.token_bindings.check(claims, client_fingerprint(), user_name=user_name)
    try:
        agent = services.agents.get(user_name)
    except (RecordNotFound, InvalidQueryValue):
        # InvalidQueryValue: a user_name that could never match, such as one containing "^".
        raise AuthError(
            "unknown_user",
            f"No active user {user_name!r} on the platform; check the token's user claim and sys_user.active.",
            user_name=user_name,
        ) from None
    if not agent.roles & set(roles):
        raise AuthError(
            "forbidden",
            f"User {user_name!r} needs one of the roles {', '.join(sorted(roles))}.",
            status=403,
            user_name=user_name,
        )
    g.agent = agent
    g.token_claims = claims
    return agent


def require_agent(view: Callable) -> Callable:
    """Let only agents (a role in ``auth.agent_roles``) call the view; sets ``g.agent``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        authenticate_request(roles=current_app.extensions["inward"].settings.auth.agent_roles)
        return view(*args, **kwargs)

    return wrapper


def require_admin(view: Callable) -> Callable:
    """Let only admins (a role in ``auth.admin_roles``) call the view; sets ``g.agent``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        authenticate_request(roles=current_app.extensions["inward"].settings.auth.admin_roles)
        return view(*args, **kwargs)

    return wrapper
