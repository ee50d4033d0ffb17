"""Agent authentication: the platform's JWT, checked on every widget and API request.

The platform mints a short-lived JWT for the agent who opens a form
(``sn_auth.GlideJWTAPI().generateJWT`` with a JWT provider) and puts it in
the widget's iframe URL. The sidecar checks the signature (HS256 with
``auth.jwt_secret`` or RS256 with ``auth.jwt_public_key_file``), ``exp``,
``nbf``, ``iat``, ``iss``, ``aud`` and a maximum lifetime, then looks the
agent up in ``sys_user`` and checks their roles.

::

    InwardError
    └── AuthError          401 (no valid token, unknown user) or 403 (not an agent or admin)
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import current_app, g, request

from config.errors import ConfigError, InwardError
from config.settings import Section

if TYPE_CHECKING:
    from integration.schemas import Agent

logger = logging.getLogger(__name__)

TOKEN_QUERY_PARAMETER = "token"
# RFC 7518, section 3.2: an HS256 key must be at least as long as the hash output.
MIN_HMAC_KEY_BYTES = 32
DEFAULT_TOKEN_LIFETIME = 900
# Beyond this many cached agents or token bindings, expired entries are dropped on the next insert.
AGENT_CACHE_PRUNE_SIZE = 10_000
# Expired token bindings are deleted from the state store after this many new bindings.
TOKEN_PURGE_INTERVAL = 500


class AuthError(InwardError):
    """A request could not be tied to an agent allowed to make it."""

    def __init__(self, code: str, message: str, *, status: int = 401, **context: object) -> None:
        super().__init__(message, **context)
        self.code = code
        self.status = status


# Checked in this order because the specific PyJWT errors subclass the general ones.
_JWT_ERRORS: list[tuple[type[Exception], str, str]] = [
    (jwt.ExpiredSignatureError, "token_expired", "The token has expired; reload the form to get a new one."),
    (jwt.ImmatureSignatureError, "token_not_yet_valid",
     "The token is not valid yet (nbf or iat in the future); check the clocks of the platform and the sidecar."),
    (jwt.InvalidAudienceError, "wrong_audience",
     "The token's aud claim does not match auth.jwt_audience; fix the JWT provider's audience."),
    (jwt.InvalidIssuerError, "wrong_issuer",
     "The token's iss claim does not match auth.jwt_issuer; fix the JWT provider's issuer."),
    (jwt.InvalidSignatureError, "bad_signature",
     "The token's signature does not verify; the JWT provider and the sidecar must share the same key."),
    (jwt.InvalidAlgorithmError, "wrong_algorithm",
     "The token is signed with an algorithm other than auth.jwt_algorithm."),
    (jwt.MissingRequiredClaimError, "missing_claim", "The token lacks a required claim."),
    (jwt.InvalidIssuedAtError, "bad_issued_at", "The token's iat claim is not a number."),
    (jwt.DecodeError, "malformed_token", "The token is not a well-formed JWT."),
    (jwt.InvalidTokenError, "invalid_token", "The token is not valid."),
]


class TokenVerifier:
    """Verify agents' JWTs against the settings in ``auth``."""

    def __init__(self, auth: Section) -> None:
        self.auth = auth
        self.key = load_verification_key(auth)
        if auth.jwt_algorithm == "HS256" and len(self.key.encode("utf-8")) < MIN_HMAC_KEY_BYTES:
            logger.warning(
                "auth.jwt_secret is %d bytes long; use at least %d random bytes for HS256 (RFC 7518, section 3.2)",
                len(self.key.encode("utf-8")), MIN_HMAC_KEY_BYTES,
            )

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token, or raise AuthError saying what is wrong."""
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[self.auth.jwt_algorithm],
                audience=self.auth.jwt_audience or None,
                issuer=self.auth.jwt_issuer or None,
                leeway=self.auth.jwt_leeway,
                options={"require": ["exp", "iat", self.auth.user_claim]},
            )
        except jwt.InvalidTokenError as error:
            raise _translate_jwt_error(error) from None
        self._check_lifetime(claims)
        user_name = claims[self.auth.user_claim]
        if not isinstance(user_name, str) or not user_name.strip():
            raise AuthError(
                "missing_claim",
                f"The token's {self.auth.user_claim} claim must be the agent's user_name, got {user_name!r}.",
            )
        return claims

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        lifetime = claims["exp"] - claims["iat"]
        if lifetime > self.auth.jwt_max_lifetime:
            raise AuthError(
                "token_lifetime_too_long",
                f"The token is valid for {lifetime:.0f} s, more than auth.jwt_max_lifetime "
                f"({self.auth.jwt_max_lifetime} s); shorten the JWT provider's expiry.",
            )


def _translate_jwt_error(error: jwt.InvalidTokenError) -> AuthError:
    for error_type, code, message in _JWT_ERRORS:
        if isinstance(error, error_type):
            if code == "missing_claim":
                message = f"The token lacks the required claim {error.claim!r}."
            return AuthError(code, message)
    return AuthError("invalid_token", "The token is not valid.")


def load_verification_key(auth: Section) -> Any:
    """Return the HS256 secret or the RS256 public key, or raise ConfigError naming the setting."""
    if auth.jwt_algorithm == "HS256":
        if not auth.jwt_secret:
            raise ConfigError(
                "auth.jwt_secret is not set, so agent tokens can be neither verified nor signed; "
                "set INWARD_AUTH__JWT_SECRET or auth.jwt_secret_file to the JWT provider's shared secret.",
                errors={"auth.jwt_secret": "missing"},
            )
        return auth.jwt_secret.reveal()
    return _load_public_key(auth.jwt_public_key_file)


def _load_public_key(path_text: str) -> Any:
    if not path_text:
        raise ConfigError(
            "auth.jwt_public_key_file is not set but auth.jwt_algorithm is RS256; "
            "point it at the PEM public key or certificate of the platform's JWT key.",
            errors={"auth.jwt_public_key_file": "missing"},
        )
    path = Path(path_text)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"auth.jwt_public_key_file: cannot read {path} ({error.strerror}); point it at a readable PEM file.",
            errors={"auth.jwt_public_key_file": "unreadable file"},
        ) from None
    try:
        if b"BEGIN CERTIFICATE" in data:
            # The platform exports the JWT key as an X.509 certificate.
            return x509.load_pem_x509_certificate(data).public_key()
        return serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigError(
            f"auth.jwt_public_key_file: {path} contains no PEM public key or certificate; "
            "export the JWT key's certificate in PEM form.",
            errors={"auth.jwt_public_key_file": "not a PEM public key"},
        ) from None


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


class TokenBindings:
    """Tie each token's jti to the client that used it first (``auth.jti_replay: bind``).

    The state store keeps the bindings, so every replica sharing it agrees on
    them. Each process also remembers the bindings it has seen, so a token
    reused by the same widget costs one database round trip, not one per
    request.
    """

    def __init__(self, store: Any, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._known: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._new_bindings = 0

    def check(self, claims: dict[str, Any], client: str, *, user_name: str | None = None) -> None:
        """Bind the token to ``client`` on first use; raise AuthError when another client used it first."""
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise AuthError(
                "missing_claim",
                "The token lacks the jti claim, which auth.jti_replay 'bind' requires; "
                "add jti to the JWT provider's claims.",
            )
        with self._lock:
            known = self._known.get(jti)
        if known is None:
            self._bind(jti, client, expires=claims["exp"], user_name=user_name)
        elif known[0] != client:
            raise _replayed(jti, user_name)

    def _bind(self, jti: str, client: str, *, expires: float, user_name: str | None) -> None:
        from inward.store import bind_token, purge_token_uses

        now = self._clock()
        with self._store.session() as session:
            bound = bind_token(session, jti=jti, client=client, expires_at=datetime.fromtimestamp(expires, timezone.utc))
            self._new_bindings += 1
            if self._new_bindings % TOKEN_PURGE_INTERVAL == 0:
                purge_token_uses(session, before=datetime.fromtimestamp(now, timezone.utc))
        if not bound:
            raise _replayed(jti, user_name)
        with self._lock:
            if len(self._known) >= AGENT_CACHE_PRUNE_SIZE:
                self._known = {key: entry for key, entry in self._known.items() if entry[1] > now}
            self._known[jti] = (client, expires)


def _replayed(jti: str, user_name: str | None) -> AuthError:
    return AuthError(
        "token_replayed",
        "This token was first used from another client; reload the form to get a new token.",
        jti=jti,
        user_name=user_name,
    )


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


def mint_token(settings: Section, user_name: str, lifetime: int = DEFAULT_TOKEN_LIFETIME) -> str:
    """Sign an HS256 token for ``user_name`` the way the platform's JWT provider would.

    Used by ``inward token`` and the demo; production tokens come from the
    platform, which keeps the signing key.
    """
    auth = settings.auth
    if auth.jwt_algorithm != "HS256":
        raise ConfigError(
            "Tokens can be minted only with auth.jwt_algorithm HS256, because the sidecar "
            "holds no RS256 private key; mint RS256 tokens on the platform.",
            errors={"auth.jwt_algorithm": "not HS256"},
        )
    if not user_name or not user_name.strip():
        raise InwardError("user_name is empty; pass the agent's sys_user.user_name.", field="user")
    if not 0 < lifetime <= auth.jwt_max_lifetime:
        raise InwardError(
            f"lifetime {lifetime} s is out of range; pass 1 to {auth.jwt_max_lifetime} s "
            "(auth.jwt_max_lifetime).",
            field="lifetime",
        )
    key = load_verification_key(auth)
    now = int(time.time())
    claims = {
        "iss": auth.jwt_issuer,
        "aud": auth.jwt_audience,
        "sub": user_name,
        auth.user_claim: user_name,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="HS256")
