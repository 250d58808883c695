"""Who is reviewing: the identity a login's claims vouch for, the role, and the ``[auth]``
configuration checked before anyone clicks *Sign in* (compared with Streamlit's own checks), and
the Review page's messages for a configuration or claims that cannot work (AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.errors import StreamlitAuthError
from streamlit.testing.v1 import AppTest

from labelaudit.errors import UsageError
from labelaudit.review.identity import (
    AUTH_KEYS,
    PROVIDER_KEYS,
    Identity,
    auth_config_problems,
    login_providers,
    resolve_identity,
)
from tests.conftest import shown_text

LEADS = frozenset({"lea@example.com"})
ISS = "https://idp.example"
GOOD = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "c" * 32,
    "client_id": "labelaudit",
    "client_secret": "s3cret",
    "server_metadata_url": "http://localhost:8080/realms/x/.well-known/openid-configuration",
}


def signed_in(**claims):
    base = {"iss": ISS, "sub": "u-1", "email": "ana@example.com", "email_verified": True}
    return resolve_identity(
        login={**base, **claims}, login_configured=True, typed_name=None, leads=LEADS
    )


# --------------------------------------------------------------------------- claims -> identity
def test_a_signed_in_user_is_named_by_their_address_lower_cased_with_the_subject():
    who = signed_in(email="Ana@Example.COM", name="Ana")
    assert who == Identity("ana@example.com", auth="oidc", role="reviewer", subject=f"{ISS}|u-1")
    assert who.authenticated and who.describe() == "ana@example.com (signed in)"
    assert signed_in(email="LEA@example.com").is_lead


@pytest.mark.parametrize(
    ("claims", "lead"),
    [
        ({"name": "lea@example.com"}, False),  # a display name the user may edit: not a lead
        ({"preferred_username": "lea@example.com"}, False),
        ({"sub": "lea@example.com"}, True),  # the provider's subject: it vouches for it
    ],
)
def test_the_role_follows_what_the_provider_vouches_for(claims, lead):
    assert signed_in(**claims).is_lead is lead


def test_a_lead_can_be_named_by_subject():
    leads = frozenset({f"{ISS}|u-9".lower()})
    who = resolve_identity(
        login={"iss": ISS, "sub": "u-9", "preferred_username": "max"},
        login_configured=True,
        typed_name=None,
        leads=leads,
    )
    assert who.name == "max" and who.is_lead


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"email_verified": False}, "not verified"),
        ({"sub": ""}, "no subject"),
        ({"email": "", "name": "", "preferred_username": ""}, "neither an e-mail"),
        ({"email": "a\nb@x.org"}, "control character"),
    ],
)
def test_claims_that_identify_nobody_are_refused(claims, message):
    with pytest.raises(UsageError, match=message):
        signed_in(**claims)


def test_typed_names_only_without_login():
    assert resolve_identity(login=None, login_configured=True, typed_name="lea@example.com") is None
    typed = resolve_identity(
        login=None, login_configured=False, typed_name="lea@example.com", leads=LEADS
    )
    assert typed == Identity("lea@example.com", auth="typed", role="lead")
    assert not typed.authenticated


# --------------------------------------------------------------------------- [auth] configuration
BROKEN = [
    ({k: v for k, v in GOOD.items() if k != "redirect_uri"}, "no redirect_uri"),
    ({k: v for k, v in GOOD.items() if k != "cookie_secret"}, "no cookie_secret"),
    ({k: v for k, v in GOOD.items() if k != "client_id"}, "no client_id"),
    ({k: v for k, v in GOOD.items() if k != "client_secret"}, "no client_secret"),
    ({k: v for k, v in GOOD.items() if k != "server_metadata_url"}, "no server_metadata_url"),
    ({"redirect_uri": GOOD["redirect_uri"], "cookie_secret": "c" * 32}, "names no provider"),
]


def _streamlit_accepts(auth: dict, monkeypatch) -> bool:
    """Streamlit's own check (streamlit.auth_util.validate_auth_credentials) on every provider."""
    from streamlit import auth_util
    from streamlit.runtime.secrets import AttrDict

    class FakeSecrets:
        def load_if_toml_exists(self) -> bool:
            return True

        def get(self, key, default=None):
            return AttrDict(auth) if key == "auth" else default

    monkeypatch.setattr(auth_util, "secrets_singleton", FakeSecrets())
    try:
        for provider in login_providers(auth) or ["default"]:
            auth_util.validate_auth_credentials(provider)
    except StreamlitAuthError:
        return False
    return True


def test_a_complete_section_passes_both_checks(monkeypatch):
    assert auth_config_problems(GOOD) == []
    assert _streamlit_accepts(GOOD, monkeypatch)
    named = {
        "redirect_uri": GOOD["redirect_uri"],
        "cookie_secret": GOOD["cookie_secret"],
        "keycloak": {k: GOOD[k] for k in PROVIDER_KEYS},
        "dex": {k: GOOD[k] for k in PROVIDER_KEYS},
    }
    assert login_providers(named) == ["keycloak", "dex"]
    assert auth_config_problems(named) == [] and _streamlit_accepts(named, monkeypatch)


@pytest.mark.parametrize(("auth", "message"), BROKEN)
def test_what_streamlit_refuses_is_named_first(auth, message, monkeypatch):
    problems = auth_config_problems(auth)
    assert any(message in p for p in problems), problems
    assert all(p.startswith(".streamlit/secrets.toml: [auth") for p in problems)
    assert not _streamlit_accepts(auth, monkeypatch)


def test_problems_streamlit_only_finds_on_the_callback_are_named_too():
    wrong_path = dict(GOOD, redirect_uri="http://localhost:8501/")  # the callback never arrives
    assert "expected this app's address followed by /oauth2callback" in "".join(
        auth_config_problems(wrong_path)
    )
    underscore = {"redirect_uri": GOOD["redirect_uri"], "cookie_secret": "c" * 32}
    underscore["my_idp"] = {k: GOOD[k] for k in PROVIDER_KEYS}
    assert "underscore" in "".join(auth_config_problems(underscore))
    assert set(AUTH_KEYS) | set(PROVIDER_KEYS) == set(GOOD)


# --------------------------------------------------------------------------- on the page (AppTest)
PAGE = str(Path(__file__).resolve().parents[1] / "views" / "review.py")


@pytest.fixture
def review_app(tmp_path, monkeypatch):
    from labelaudit.workspace import Workspace
    from tests.test_review_data import toy_dataset

    monkeypatch.delenv("LABELAUDIT_DB_URL", raising=False)
    ws = Workspace(tmp_path / "ws")
    h = ws.save_dataset(toy_dataset())

    def make(auth: dict | None) -> AppTest:
        at = AppTest.from_file(PAGE, default_timeout=60)
        at.session_state["workspace"] = str(ws.root)
        at.session_state["dataset_hash"] = h
        at.session_state["reviewer"] = "typed-in-the-session"
        if auth is not None:
            at.secrets["auth"] = auth
        return at.run()

    return make


def _buttons(at) -> dict[str, str]:
    return {b.key: b.label for b in at.button if b.key}


def test_a_broken_configuration_is_named_on_the_page_not_on_the_click(review_app):
    at = review_app({k: v for k, v in GOOD.items() if k != "client_secret"})
    assert not at.exception, at.exception
    (err,) = at.error
    assert "Login is configured but cannot work yet" in err.value
    assert ".streamlit/secrets.toml: [auth] has no client_secret" in shown_text(err.value)
    assert "review_sign_in" not in _buttons(at)  # no button that would fail with a traceback
    assert not at.text or "Reviewing as" not in at.text[0].value  # and no typed name taken


def test_sign_in_buttons_follow_the_providers(review_app):
    at = review_app(GOOD)
    assert not at.exception, at.exception
    assert _buttons(at).get("review_sign_in") == "Sign in"
    two = {
        "redirect_uri": GOOD["redirect_uri"],
        "cookie_secret": GOOD["cookie_secret"],
        "keycloak": {k: GOOD[k] for k in PROVIDER_KEYS},
        "dex": {k: GOOD[k] for k in PROVIDER_KEYS},
    }
    at = review_app(two)
    assert not at.exception, at.exception
    b = _buttons(at)
    assert b["review_sign_in_keycloak"] == "Sign in with keycloak"
    assert b["review_sign_in_dex"] == "Sign in with dex"


def test_unusable_claims_say_why_and_offer_to_sign_out(review_app, monkeypatch):
    import components.login as login

    monkeypatch.setattr(
        login,
        "login_claims",
        lambda: {"iss": ISS, "sub": "1", "email": "*ana*@x.org", "email_verified": False},
    )
    at = review_app(GOOD)
    assert not at.exception, at.exception
    (err,) = at.error
    assert "\\*ana\\*@x\\.org" in err.value  # escaped: provider text is plain text
    assert "the e-mail address *ana*@x.org is not verified" in shown_text(err.value)
    assert "review_sign_out" in _buttons(at)
    assert "review_session" not in at.session_state


# --------------------------------------------------------------------------- the audit log
def test_the_log_says_which_identities_were_signed_in_and_which_typed(tmp_path):
    from labelaudit.review import team
    from labelaudit.review.store import ReviewStore
    from tests.test_review_team import _blind

    store = ReviewStore(f"sqlite:///{tmp_path / 'review.sqlite'}")
    v = "v1"
    lea = Identity("lea@example.com", auth="oidc", role="lead", subject=f"{ISS}|lea")
    typed_lea = Identity("lea@example.com", auth="typed", role="lead")  # same name, not vouched
    for i, ident in enumerate([lea, lea, typed_lea, None]):
        store.record(
            dataset_version=v,
            item_id=f"x{i}",
            reviewer=ident.name if ident else "cli",
            action="keep",
            old_label="a",
            new_label=None,
            identity=ident,
        )
    team.create_assignment(
        store, dataset_version=v, item_ids=["0", "1"], reviewers=["ana", "bo"],
        overlap_share=1.0, lead=lea,
    )  # fmt: skip
    book = team.assignment_book(store, v)
    _blind(store, v, book, "0", "ana", "keep")  # identity: oidc ana (tests.test_review_team.who)

    log = store.log(v)
    assert log["subject"].tolist() == [f"{ISS}|lea", f"{ISS}|lea", "", ""]
    got = team.identities_in_log(store, v)
    assert list(got.columns) == team.IDENTITY_LOG_COLUMNS
    rows = got[["reviewer", "identified", "subject", "decisions", "blind_reviews"]].values.tolist()
    assert rows == [
        ["ana", "signed in", "", 0, 1],
        ["lea@example.com", "signed in", f"{ISS}|lea", 2, 0],
        ["lea@example.com", "typed, not verified", "", 1, 0],
        ["cli", "script", "", 1, 0],
    ]
    assert got["last_decision"].notna().all()
    store.close()


def test_labelaudit_app_reads_the_secrets_of_the_folder_it_was_started_from(tmp_path):
    """The server runs in the app's own folder (a checkout or site-packages); without this flag a
    deployment's .streamlit/secrets.toml beside its data would never be read."""
    from labelaudit.commands.app import APP_SCRIPT, streamlit_command

    cmd = streamlit_command(8501, launch_dir=tmp_path)
    files = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--secrets.files"]
    assert files[-1] == str(tmp_path.resolve() / ".streamlit" / "secrets.toml")  # wins
    assert str(APP_SCRIPT.parent / ".streamlit" / "secrets.toml") in files  # Streamlit's own
    assert str(Path.home() / ".streamlit" / "secrets.toml") == files[0]


# --------------------------------------------------------------------------- docs/review.md
def _login_docs() -> str:
    text = (Path(__file__).resolve().parents[1] / "docs" / "review.md").read_text("utf-8")
    start = text.index("### Logins (OpenID Connect)")
    return text[start : text.index("\n## ", start)]


def test_the_documented_secrets_are_the_keys_the_code_requires():
    import re
    import tomllib

    from labelaudit.review.identity import OPTIONAL_PROVIDER_KEYS

    docs = _login_docs()
    (block,) = [b for b in re.findall(r"```toml\n(.*?)```", docs, re.S) if "[auth]" in b]
    auth = tomllib.loads(block)["auth"]
    assert list(auth) == [*AUTH_KEYS, *PROVIDER_KEYS]  # exactly, in the order Streamlit's docs use
    assert auth_config_problems(auth) == []
    for optional in OPTIONAL_PROVIDER_KEYS[:1]:
        assert f"`{optional}`" in docs
    # Every discovery address in the section is a discovery address.
    for url in re.findall(r"server_metadata_url = \"([^\"]+)\"", docs):
        assert url.endswith("/.well-known/openid-configuration"), url


def test_the_documented_stub_command_runs_as_written():
    import re

    from tests import oidc_stub

    docs = _login_docs()
    (cmd,) = re.findall(r"python -m tests\.oidc_stub (.*?)#", docs.replace("\\\n", " "), re.S)
    args = oidc_stub.build_parser().parse_args(cmd.split())  # exits on an unknown flag
    assert args.app == "http://127.0.0.1:8501" and args.port == 8570
    assert args.user == ["ana@example.com", "lea@example.com"]
    assert "LABELAUDIT_LEADS=lea@example.com" in docs
