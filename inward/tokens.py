"""Agent tokens: verifying the platform's JWTs, binding them to clients, minting development ones.

::

    InwardError
    └── AuthError          401 (no valid token, unknown user) or 403 (not an agent or admin)
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from config.errors import ConfigError, InwardError
from config.settings import Section

logger = logging.getLogger(__name__)

# RFC 7518, section 3.2: an HS256 key must be at least as long as the hash output.
MIN_HMAC_KEY_BYTES = 32
DEFAULT_TOKEN_LIFETIME = 900
# Beyond this many remembered bindings, those of expired tokens are dropped on the next insert.
BINDING_CACHE_PRUNE_SIZE = 10_000
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
            if len(self._known) >= BINDING_CACHE_PRUNE_SIZE:
                self._known = {key: entry for key, entry in self._known.items() if entry[1] > now}
            self._known[jti] = (client, expires)


def _replayed(jti: str, user_name: str | None) -> AuthError:
    return AuthError(
        "token_replayed",
        "This token was first used from another client; reload the form to get a new token.",
        jti=jti,
        user_name=user_name,
    )


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
