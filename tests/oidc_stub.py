"""A small, real OpenID Connect provider on loopback, for tests and for trying login by hand.

It speaks the authorization-code flow the way a hosted provider does (OpenID Connect Core 1.0 §3.1,
Discovery 1.0, RFC 7636 PKCE, RP-Initiated Logout 1.0), so Streamlit's ``st.login`` runs its real
code against it (Authlib's Starlette client: discovery, PKCE S256, the token exchange with client
authentication, the RS256 signature checked against the JWKS, ``iss``/``aud``/``nonce``/``at_hash``):

- ``GET /.well-known/openid-configuration``: the discovery document;
- ``GET /authorize``: consents at once for :attr:`OIDCStub.next_user` (or the ``login_hint``), else
  shows a page with one "Sign in as …" link per user; redirects back with ``code`` and ``state``;
- ``POST /token``: the code (single use, bound to the client, the redirect URI and the PKCE
  challenge) for an access token and an ``id_token`` signed RS256 with a key made at start;
- ``GET /jwks``: the public key; ``GET /userinfo``: the user's claims for a bearer access token;
- ``GET /logout``: the end-session endpoint; forgets the user's tokens and redirects to the
  registered ``post_logout_redirect_uri``.

Nothing here is hand-rolled cryptography: keys and JWTs come from joserfc (installed with
Streamlit's ``auth`` extra). Every request is kept in :attr:`OIDCStub.events` for assertions.

By hand (docs/review.md, "Try it with the stub provider")::

    python -m tests.oidc_stub --port 8570 --app http://127.0.0.1:8501 --user ana@example.com --user lea@example.com

prints the ``[auth]`` section for ``.streamlit/secrets.toml`` and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_SECONDS = 60
TOKEN_SECONDS = 3600


@dataclass(frozen=True)
class StubUser:
    """A user of the stub provider: ``sub`` is the stable id, the rest are profile claims."""

    email: str
    name: str = ""
    sub: str = ""
    email_verified: bool = True

    def claims(self) -> dict[str, Any]:
        return {
            "sub": self.sub or hashlib.sha256(self.email.encode()).hexdigest()[:16],
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name or self.email.split("@")[0].title(),
            "preferred_username": self.email.split("@")[0],
        }


@dataclass
class _Grant:
    user: str
    client_id: str
    redirect_uri: str
    nonce: str | None
    scope: str
    challenge: str | None
    method: str | None
    expires: float


@dataclass
class OIDCStub:
    """The provider. ``with OIDCStub(redirect_uris=[...], users=[...]) as idp:`` serves on a free
    loopback port until the block ends (also on an exception).

    ``next_user``: the e-mail of the user who consents at the next ``/authorize`` (None: show the
    chooser page). ``events``: ``(endpoint, details)`` per request, in order.
    """

    redirect_uris: list[str]
    users: list[StubUser]
    client_id: str = "labelaudit"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    host: str = "127.0.0.1"
    port: int = 0
    next_user: str | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = RSAKey.generate_key(
            2048, parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"}
        )
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, str] = {}  # access token -> user e-mail
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> OIDCStub:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OIDCStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def secrets_toml(self, redirect_uri: str, cookie_secret: str | None = None) -> str:
        """The ``[auth]`` section of ``.streamlit/secrets.toml`` for an app at ``redirect_uri``."""
        values = {
            "redirect_uri": redirect_uri,
            "cookie_secret": cookie_secret or secrets.token_urlsafe(32),
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "server_metadata_url": self.metadata_url,
        }
        return "[auth]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())

    def of(self, endpoint: str) -> list[dict[str, Any]]:
        """The recorded requests to one endpoint (``authorize``, ``token``, ``userinfo``, ``logout``...)."""
        return [d for e, d in list(self.events) if e == endpoint]

    # ------------------------------------------------------------------ the protocol
    def discovery(self) -> dict[str, Any]:
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "userinfo_endpoint": f"{i}/userinfo",
            "jwks_uri": f"{i}/jwks",
            "end_session_endpoint": f"{i}/logout",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name",
                "preferred_username",
            ],
        }  # fmt: skip

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    def user(self, email: str) -> StubUser | None:
        return next((u for u in self.users if u.email.lower() == email.lower()), None)

    def issue_code(self, q: dict[str, str], email: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                user=email,
                client_id=q["client_id"],
                redirect_uri=q["redirect_uri"],
                nonce=q.get("nonce"),
                scope=q.get("scope", ""),
                challenge=q.get("code_challenge"),
                method=q.get("code_challenge_method"),
                expires=time.time() + CODE_SECONDS,
            )
        return code

    def exchange(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict]:
        """The token endpoint: (HTTP status, JSON body) per RFC 6749 §5."""
        client_id, client_secret = basic or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        if client_id != self.client_id or not secrets.compare_digest(
            client_secret, self.client_secret
        ):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # single use, even when refused
        if grant is None or grant.expires < time.time() or grant.client_id != client_id:
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        if grant.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if grant.method != "S256" or digest.rstrip(b"=").decode() != grant.challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
        user = self.user(grant.user)
        assert user is not None
        access = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[access] = user.email
        now = int(time.time())
        at_hash = base64.urlsafe_b64encode(hashlib.sha256(access.encode()).digest()[:16])
        claims = {
            "iss": self.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "auth_time": now,
            "at_hash": at_hash.rstrip(b"=").decode(),
            **user.claims(),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        header = {"alg": "RS256", "kid": self._key.kid, "typ": "JWT"}
        id_token = jwt.encode(header, claims, self._key)
        return 200, {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "scope": grant.scope,
            "id_token": id_token,
        }

    def userinfo(self, bearer: str | None) -> tuple[int, dict]:
        email = self._tokens.get(bearer or "")
        user = self.user(email) if email else None
        if user is None:
            return 401, {"error": "invalid_token"}
        return 200, user.claims()

    def logout(self, id_token_hint: str | None) -> str | None:
        """Forget the tokens of the user named by ``id_token_hint``; returns their e-mail."""
        if not id_token_hint:
            return None
        try:
            email = jwt.decode(id_token_hint, self._key).claims.get("email")
        except Exception:  # a hint we did not sign: ignore it, as providers do
            return None
        with self._lock:
            for token in [t for t, e in self._tokens.items() if e == email]:
                del self._tokens[token]
        return str(email)


def _handler(idp: OIDCStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
            pass  # requests are recorded in idp.events instead

        def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: dict) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def _redirect(self, url: str) -> None:
            self._send(302, b"", "text/plain", {"Location": url})

        def _page(self, status: int, title: str, body: str) -> None:
            doc = f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}"
            self._send(status, doc.encode(), "text/html; charset=utf-8")

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                idp.events.append(("discovery", {}))
                return self._json(200, idp.discovery())
            if url.path == "/jwks":
                idp.events.append(("jwks", {}))
                return self._json(200, idp.jwks())
            if url.path == "/authorize":
                return self._authorize(q)
            if url.path == "/userinfo":
                auth = self.headers.get("Authorization", "")
                bearer = auth[7:] if auth.startswith("Bearer ") else None
                status, data = idp.userinfo(bearer)
                idp.events.append(("userinfo", {"status": status}))
                return self._json(status, data)
            if url.path == "/logout":
                who = idp.logout(q.get("id_token_hint"))
                target = q.get("post_logout_redirect_uri")
                idp.events.append(("logout", {"user": who, "redirect": target}))
                if target and target in idp.redirect_uris:
                    return self._redirect(target)
                return self._page(
                    200, "Signed out", "<p>You are signed out of the stub provider.</p>"
                )
            self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path != "/token":
                return self._json(404, {"error": "not_found"})
            n = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}
            basic = None
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                from urllib.parse import unquote_plus

                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                basic = (unquote_plus(user), unquote_plus(pw))  # RFC 6749 §2.3.1: form-encoded
            status, data = idp.exchange(form, basic)
            idp.events.append(
                (
                    "token",
                    {"status": status, "error": data.get("error"), "pkce": "code_verifier" in form},
                )
            )
            self._json(status, data)

        def _authorize(self, q: dict[str, str]) -> None:
            redirect_uri = q.get("redirect_uri", "")
            # Never redirect to an unregistered URI (RFC 6749 §4.1.2.1): show the error instead.
            if q.get("client_id") != idp.client_id or redirect_uri not in idp.redirect_uris:
                idp.events.append(("authorize", {"error": "invalid_client_or_redirect_uri"}))
                return self._page(400, "Unknown client or redirect URI", "")

            def back(**params: str) -> None:
                if q.get("state") is not None:
                    params["state"] = q["state"]
                sep = "&" if "?" in redirect_uri else "?"
                self._redirect(f"{redirect_uri}{sep}{urlencode(params)}")

            scopes = q.get("scope", "").split()
            if q.get("response_type") != "code":
                idp.events.append(("authorize", {"error": "unsupported_response_type"}))
                return back(error="unsupported_response_type")
            if "openid" not in scopes:
                idp.events.append(("authorize", {"error": "invalid_scope"}))
                return back(error="invalid_scope")
            email = q.get("login_hint") or idp.next_user
            if email is None:  # nobody chosen in advance: let the person pick
                links = "".join(
                    f'<li><a href="/authorize?{html.escape(urlencode({**q, "login_hint": u.email}))}">'
                    f"Sign in as {html.escape(u.email)}</a></li>"
                    for u in idp.users
                )
                idp.events.append(("authorize", {"chooser": True}))
                return self._page(200, "Stub provider: choose a user", f"<ul>{links}</ul>")
            if idp.user(email) is None:
                idp.events.append(("authorize", {"error": "access_denied", "user": email}))
                return back(error="access_denied", error_description="unknown user")
            code = idp.issue_code(q, idp.user(email).email)  # type: ignore[union-attr]
            idp.events.append(
                ("authorize", {"user": email, "pkce": "code_challenge" in q, "scope": scopes})
            )
            back(code=code)

    return Handler


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--port", type=int, default=8570)
    p.add_argument("--app", default="http://127.0.0.1:8501", help="the app's address (no path)")
    p.add_argument("--user", action="append", default=[], metavar="EMAIL")
    p.add_argument("--client-secret", default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    users = [StubUser(e) for e in (args.user or ["ana@example.com", "lea@example.com"])]
    redirect = f"{args.app.rstrip('/')}/oauth2callback"
    idp = OIDCStub([redirect], users, port=args.port)
    if args.client_secret:
        idp.client_secret = args.client_secret
    with idp:
        print("# .streamlit/secrets.toml, in the folder you start `labelaudit app` from:")
        print(idp.secrets_toml(redirect))
        print(f"stub provider on {idp.issuer}; users: {', '.join(u.email for u in users)}")
        print("Ctrl-C stops it.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
