"""The stub OpenID Connect provider (tests/oidc_stub.py) checked with Authlib's own client, the
library Streamlit's ``st.login`` runs: discovery, the code flow with PKCE S256, the RS256 id_token
verified against the JWKS with Authlib's OpenID Connect claim rules, userinfo, logout; and the
refusals a real provider makes (wrong secret, a reused code, a bad PKCE verifier, an unregistered
redirect URI). The browser test (tests/test_identity_browser.py) drives the same stub through the
running app."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.oidc_stub import OIDCStub, StubUser

APP = "http://127.0.0.1:8671/oauth2callback"


@pytest.fixture
def idp():
    with OIDCStub([APP], [StubUser("ana@example.com", sub="s-ana")]) as stub:
        yield stub


def _client(idp: OIDCStub, secret: str | None = None) -> OAuth2Client:
    return OAuth2Client(
        idp.client_id,
        secret or idp.client_secret,
        scope="openid email profile",
        redirect_uri=APP,
        code_challenge_method="S256",
    )


def _authorize(idp: OIDCStub, client: OAuth2Client, **extra: str) -> tuple[dict, str, str]:
    """(the query the provider redirected back with, the code verifier, the nonce)."""
    meta = httpx.get(idp.metadata_url).json()
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra
    )
    r = httpx.get(url, follow_redirects=False)
    assert r.status_code == 302, r.text
    back = urlsplit(r.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == APP
    q = {k: v[0] for k, v in parse_qs(back.query).items()}
    assert q.get("state") == state
    return q, verifier, nonce


def test_code_flow_with_pkce_gives_a_verified_id_token(idp):
    idp.next_user = "ana@example.com"
    client = _client(idp)
    q, verifier, nonce = _authorize(idp, client)
    meta = idp.discovery()
    token = client.fetch_token(meta["token_endpoint"], code=q["code"], code_verifier=verifier)
    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {"iss": {"values": [meta["issuer"]]}},
        {"nonce": nonce, "client_id": idp.client_id, "access_token": token["access_token"]},
    )
    claims.validate()  # iss, aud, exp, iat, nonce, at_hash: raises on any mismatch
    assert (claims["sub"], claims["email"], claims["email_verified"]) == (
        "s-ana",
        "ana@example.com",
        True,
    )
    info = httpx.get(
        meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert info.status_code == 200 and info.json()["email"] == "ana@example.com"
    assert idp.of("authorize")[-1]["pkce"] and idp.of("token")[-1]["pkce"]

    # RP-initiated logout: the tokens are forgotten, and the browser goes back to the app.
    r = httpx.get(
        meta["end_session_endpoint"],
        params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": APP},
    )
    assert r.status_code == 302 and r.headers["location"] == APP
    assert idp.of("logout")[-1]["user"] == "ana@example.com"
    gone = httpx.get(
        meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert gone.status_code == 401


def test_a_code_is_single_use_and_bound_to_secret_and_verifier(idp):
    idp.next_user = "ana@example.com"
    endpoint = idp.discovery()["token_endpoint"]
    q, verifier, _ = _authorize(idp, _client(idp))
    with pytest.raises(OAuthError, match="invalid_client"):
        _client(idp, "wrong").fetch_token(endpoint, code=q["code"], code_verifier=verifier)
    q, verifier, _ = _authorize(idp, _client(idp))
    with pytest.raises(OAuthError, match="PKCE"):
        _client(idp).fetch_token(endpoint, code=q["code"], code_verifier=verifier + "x")
    with pytest.raises(OAuthError, match="unknown or used"):  # refused once, gone for good
        _client(idp).fetch_token(endpoint, code=q["code"], code_verifier=verifier)
    q, verifier, _ = _authorize(idp, _client(idp))
    _client(idp).fetch_token(endpoint, code=q["code"], code_verifier=verifier)
    with pytest.raises(OAuthError, match="unknown or used"):
        _client(idp).fetch_token(endpoint, code=q["code"], code_verifier=verifier)


def test_unregistered_redirect_and_unknown_user_are_refused(idp):
    meta = idp.discovery()
    bad = OAuth2Client(
        idp.client_id, idp.client_secret, scope="openid", redirect_uri="http://evil/cb"
    )
    url, _ = bad.create_authorization_url(meta["authorization_endpoint"])
    r = httpx.get(url, follow_redirects=False)
    assert r.status_code == 400 and "location" not in r.headers  # never sent to that URI
    idp.next_user = "mallory@example.com"
    q, _, _ = _authorize(idp, _client(idp))
    assert q["error"] == "access_denied" and "code" not in q
    idp.next_user = None  # nobody chosen: the chooser page lists the users, escaped
    url, _ = _client(idp).create_authorization_url(meta["authorization_endpoint"])
    page = httpx.get(url)
    assert page.status_code == 200 and "Sign in as ana@example.com" in page.text


def test_secrets_section_has_what_streamlit_requires(idp):
    import tomllib

    auth = tomllib.loads(idp.secrets_toml(APP))["auth"]
    assert auth["server_metadata_url"] == idp.metadata_url
    assert auth["redirect_uri"] == APP and len(auth["cookie_secret"]) >= 32
