"""Agent authentication: the platform's JWT on every widget and API request."""

from __future__ import annotations

import datetime
import time

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from config.errors import ConfigError
from inward.auth import AgentDirectory, TokenVerifier, mint_token
from tests.inward.helpers import (  # noqa: F401
    AUDIENCE,
    ISSUER,
    JWT_SECRET,
    app,
    build_app,
    client,
    directory,
    make_agent,
    make_token,
    settings,
    shell_settings,
)

WHOAMI = "/api/v1/auth/whoami"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def now() -> int:
    return int(time.time())


REJECTED_TOKENS = [
    ("expired", {"iat": now() - 600, "nbf": now() - 600, "exp": now() - 300}, {}, "token_expired"),
    ("wrong audience", {"aud": "someone-else"}, {}, "wrong_audience"),
    ("wrong issuer", {"iss": "https://evil.example.com"}, {}, "wrong_issuer"),
    ("bad signature", {}, {"key": "another-secret-0123456789abcdef-0123"}, "bad_signature"),
    ("too long lifetime", {"exp": now() + 7200}, {}, "token_lifetime_too_long"),
    ("not yet valid", {"nbf": now() + 600}, {}, "token_not_yet_valid"),
    ("missing iat", {}, {"drop": ("iat",)}, "missing_claim"),
    ("missing exp", {}, {"drop": ("exp",)}, "missing_claim"),
    ("missing subject", {}, {"drop": ("sub",)}, "missing_claim"),
    ("empty subject", {"sub": ""}, {}, "missing_claim"),
]


@pytest.mark.parametrize(
    "claims, options, code", [case[1:] for case in REJECTED_TOKENS], ids=[case[0] for case in REJECTED_TOKENS]
)
def test_rejected_token_gets_401(client, claims, options, code):
    response = client.get(WHOAMI, headers=bearer(make_token(claims, **options)))

    assert response.status_code == 401
    assert response.json["error"]["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_missing_token_gets_401(client):
    response = client.get(WHOAMI)

    assert response.status_code == 401
    assert response.json["error"]["code"] == "missing_token"
    assert "Authorization: Bearer" in response.json["error"]["message"]


def test_malformed_token_gets_401(client):
    response = client.get(WHOAMI, headers=bearer("not.a.jwt"))

    assert response.status_code == 401
    assert response.json["error"]["code"] == "malformed_token"


def test_basic_authorization_header_gets_401(client):
    response = client.get(WHOAMI, headers={"Authorization": "Basic YWRtaW46YWRtaW4="})

    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_authorization_header"


def test_unsigned_token_gets_401(client):
    token = jwt.encode({"sub": "abel.tuter", "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 60},
                       None, algorithm="none")

    response = client.get(WHOAMI, headers=bearer(token))

    assert response.status_code == 401
    assert response.json["error"]["code"] == "wrong_algorithm"


def test_unknown_user_gets_401(client):
    response = client.get(WHOAMI, headers=bearer(make_token({"sub": "nobody"})))

    assert response.status_code == 401
    assert response.json["error"]["code"] == "unknown_user"
    assert "'nobody'" in response.json["error"]["message"]


def test_user_without_agent_role_gets_403(client):
    response = client.get(WHOAMI, headers=bearer(make_token({"sub": "carol.customer"})))

    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    assert "itil" in response.json["error"]["message"]


def test_valid_bearer_token_resolves_agent(client, directory):
    response = client.get(WHOAMI, headers=bearer(make_token()))

    assert response.status_code == 200
    assert response.json["user_name"] == "abel.tuter"
    assert response.json["sys_id"] == directory.agents["abel.tuter"].sys_id
    assert response.json["roles"] == ["itil"]
    assert response.json["groups"] == ["a" * 32]
    assert response.json["group_names"] == ["Service Desk"]
    assert response.json["admin"] is False


def test_valid_query_token_resolves_agent(client):
    response = client.get(WHOAMI, query_string={"token": make_token()})

    assert response.status_code == 200
    assert response.json["user_name"] == "abel.tuter"


def test_view_sees_agent_in_g(app):
    from flask import g

    from inward.auth import require_agent

    @app.get("/api/test/agent")
    @require_agent
    def agent_view():
        return {"sys_id": g.agent.sys_id, "jti": g.token_claims["jti"]}

    token = make_token({"jti": "jti-1"})
    response = app.test_client().get("/api/test/agent", headers=bearer(token))

    assert response.status_code == 200
    assert response.json["jti"] == "jti-1"


@pytest.mark.parametrize("user_name", ["beth.anglin", "dana.csm"])
def test_admin_route_admits_admins(client, user_name):
    response = client.get("/api/test/admin", headers=bearer(make_token({"sub": user_name})))

    assert response.status_code == 200


def test_admin_route_rejects_plain_agent(client):
    response = client.get("/api/test/admin", headers=bearer(make_token()))

    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"


def test_custom_user_claim(tmp_path, directory):
    settings = shell_settings(tmp_path, auth={"user_claim": "user_name"})
    client = build_app(settings, directory).test_client()
    token = make_token({"sub": "6816f79cc0a8016401c5a33be04be441", "user_name": "abel.tuter"})

    response = client.get(WHOAMI, headers=bearer(token))

    assert response.status_code == 200
    assert response.json["user_name"] == "abel.tuter"


def test_missing_secret_gets_500_naming_setting(tmp_path, directory):
    settings = shell_settings(tmp_path, auth={"jwt_secret": ""})
    client = build_app(settings, directory).test_client()

    response = client.get(WHOAMI, headers=bearer(make_token()))

    assert response.status_code == 500
    assert "INWARD_AUTH__JWT_SECRET" in response.json["error"]["message"]


def test_agent_lookup_cached_for_ttl(client, directory):
    client.get(WHOAMI, headers=bearer(make_token()))
    client.get(WHOAMI, headers=bearer(make_token()))

    assert directory.lookups == ["abel.tuter"]


def test_agent_directory_expires_entries(directory):
    clock = [1000.0]
    agents = AgentDirectory(directory, ttl=300, clock=lambda: clock[0])

    agents.get("abel.tuter")
    clock[0] += 299
    agents.get("abel.tuter")
    clock[0] += 2
    agents.get("abel.tuter")

    assert directory.lookups == ["abel.tuter", "abel.tuter"]


def test_agent_directory_does_not_cache_misses(directory):
    from integration.errors import RecordNotFound

    agents = AgentDirectory(directory, ttl=300)
    with pytest.raises(RecordNotFound):
        agents.get("new.hire")
    directory.agents["new.hire"] = make_agent("new.hire", {"itil"})

    assert agents.get("new.hire").user_name == "new.hire"


# RS256: the platform signs with a keystore's private key; the sidecar has only the public part.


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_public_key(path, key) -> str:
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path.write_bytes(pem)
    return str(path)


def write_certificate(path, key) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme jwt key")])
    start = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(path)


@pytest.mark.parametrize("writer", [write_public_key, write_certificate], ids=["public key", "certificate"])
def test_rs256_token_accepted(tmp_path, directory, rsa_key, writer):
    key_file = writer(tmp_path / "jwt.pem", rsa_key)
    settings = shell_settings(tmp_path, auth={"jwt_algorithm": "RS256", "jwt_public_key_file": key_file})
    client = build_app(settings, directory).test_client()

    response = client.get(WHOAMI, headers=bearer(make_token(key=rsa_key, algorithm="RS256")))

    assert response.status_code == 200
    assert response.json["user_name"] == "abel.tuter"


def test_rs256_rejects_other_key(tmp_path, directory, rsa_key):
    key_file = write_public_key(tmp_path / "jwt.pem", rsa_key)
    settings = shell_settings(tmp_path, auth={"jwt_algorithm": "RS256", "jwt_public_key_file": key_file})
    client = build_app(settings, directory).test_client()
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    response = client.get(WHOAMI, headers=bearer(make_token(key=other_key, algorithm="RS256")))

    assert response.status_code == 401
    assert response.json["error"]["code"] == "bad_signature"


def test_rs256_rejects_hs256_token(tmp_path, directory, rsa_key):
    """An HS256 token signed with the public key must not pass (algorithm confusion)."""
    key_file = write_public_key(tmp_path / "jwt.pem", rsa_key)
    settings = shell_settings(tmp_path, auth={"jwt_algorithm": "RS256", "jwt_public_key_file": key_file})
    client = build_app(settings, directory).test_client()
    token = make_token(key=JWT_SECRET, algorithm="HS256")

    response = client.get(WHOAMI, headers=bearer(token))

    assert response.status_code == 401
    assert response.json["error"]["code"] == "wrong_algorithm"


def test_rs256_missing_key_file_names_setting(tmp_path):
    settings = shell_settings(tmp_path, auth={"jwt_algorithm": "RS256", "jwt_public_key_file": str(tmp_path / "none.pem")})

    with pytest.raises(ConfigError, match="auth.jwt_public_key_file: cannot read"):
        TokenVerifier(settings.auth)


def test_rs256_key_file_without_pem_names_setting(tmp_path):
    (tmp_path / "key.pem").write_text("not a key")
    settings = shell_settings(tmp_path, auth={"jwt_algorithm": "RS256", "jwt_public_key_file": str(tmp_path / "key.pem")})

    with pytest.raises(ConfigError, match="contains no PEM public key"):
        TokenVerifier(settings.auth)


def test_minted_token_verifies(settings):
    token = mint_token(settings, "abel.tuter", lifetime=120)

    claims = TokenVerifier(settings.auth).verify(token)

    assert claims["sub"] == "abel.tuter"
    assert claims["exp"] - claims["iat"] == 120
    assert claims["jti"]


# jti replay protection (auth.jti_replay: bind)


@pytest.fixture
def binding_settings(tmp_path):
    from inward.store import Store

    settings = shell_settings(tmp_path, auth={"jti_replay": "bind"})
    store = Store(settings.store.url)
    store.upgrade()
    store.close()
    return settings


def test_bound_token_reused_by_same_client(binding_settings, directory):
    client = build_app(binding_settings, directory).test_client()
    headers = {**bearer(make_token()), "User-Agent": "Chrome/131"}

    first = client.get(WHOAMI, headers=headers)
    second = client.get(WHOAMI, headers=headers)

    assert first.status_code == 200
    assert second.status_code == 200


def test_bound_token_rejected_from_other_client(binding_settings, directory):
    client = build_app(binding_settings, directory).test_client()
    token = make_token()
    client.get(WHOAMI, headers={**bearer(token), "User-Agent": "Chrome/131"})

    response = client.get(WHOAMI, headers={**bearer(token), "User-Agent": "curl/8.5"})

    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_replayed"


def test_bound_token_rejected_on_other_replica(binding_settings, directory):
    """Two apps sharing one state store stand for two replicas behind a load balancer."""
    token = make_token()
    build_app(binding_settings, directory).test_client().get(
        WHOAMI, headers={**bearer(token), "User-Agent": "Chrome/131"}
    )

    response = build_app(binding_settings, directory).test_client().get(
        WHOAMI, headers={**bearer(token), "User-Agent": "curl/8.5"}
    )

    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_replayed"


def test_binding_needs_jti(binding_settings, directory):
    client = build_app(binding_settings, directory).test_client()

    response = client.get(WHOAMI, headers=bearer(make_token(drop=("jti",))))

    assert response.status_code == 401
    assert response.json["error"]["code"] == "missing_claim"
    assert "jti" in response.json["error"]["message"]


def test_binding_off_by_default(client):
    token = make_token(drop=("jti",))

    first = client.get(WHOAMI, headers={**bearer(token), "User-Agent": "Chrome/131"})
    second = client.get(WHOAMI, headers={**bearer(token), "User-Agent": "curl/8.5"})

    assert first.status_code == 200
    assert second.status_code == 200


def test_short_hs256_secret_logged(tmp_path, caplog):
    settings = shell_settings(tmp_path, auth={"jwt_secret": "too-short"})

    with caplog.at_level("WARNING", logger="inward.auth"):
        TokenVerifier(settings.auth)

    assert "at least 32 random bytes" in caplog.text
    assert "too-short" not in caplog.text


def test_platform_down_during_lookup_gets_503(tmp_path):
    from integration.errors import PlatformUnavailable

    def unreachable(user_name):
        raise PlatformUnavailable("The platform at https://acme.service-now.com timed out.", retryable=True)

    client = build_app(shell_settings(tmp_path), unreachable).test_client()

    response = client.get(WHOAMI, headers=bearer(make_token()))

    assert response.status_code == 503
    assert response.json["error"]["code"] == "platform_unavailable"
