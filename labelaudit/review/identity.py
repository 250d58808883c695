"""Who is reviewing: an identity, how it was established, and its role.

A decision is recorded with the reviewer's name *and* how that name was established
(:data:`AUTH_METHODS`): ``oidc`` when the deployment's OpenID Connect login vouched for it, ``typed``
when the person typed it (and the browser remembered it), ``import`` for decisions made in another
tool (a Label Studio pull), ``script`` for the CLI and notebooks. The audit log keeps it beside
every decision (:meth:`labelaudit.review.store.ReviewStore.log`, columns ``auth`` and ``role``).

Roles (:data:`ROLES`): a ``reviewer`` decides items; a ``lead`` may also run bulk decisions, change
the queue for others (assignments, queue settings), adjudicate and export. Leads are named by the
deployment in ``LABELAUDIT_LEADS`` (comma-separated names or e-mail addresses, compared without
case). With nobody named, everyone is a lead: one person, or a team that trusts itself, keeps every
action as before. Roles are derived from the identity on every page run and never read from the
browser, so a URL or a session-state value cannot grant one.

A typed name is not verified: anyone can type anyone's name. When the deployment configures login,
typed names are not accepted at all (:func:`resolve_identity` returns None until the person signs
in); that is the setting for a team whose roles must hold.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from labelaudit.errors import UsageError

AuthMethod = Literal["oidc", "typed", "import", "script"]
Role = Literal["reviewer", "lead"]
#: How a reviewer's name was established.
AUTH_METHODS: tuple[AuthMethod, ...] = ("oidc", "typed", "import", "script")
ROLES: tuple[Role, ...] = ("reviewer", "lead")
#: Environment variable naming the leads (comma-separated names or e-mail addresses).
LEADS_ENV = "LABELAUDIT_LEADS"
#: Longest reviewer name accepted (names are stored and shown everywhere).
MAX_NAME_LENGTH = 120


@dataclass(frozen=True)
class Identity:
    """A reviewer as recorded with each decision.

    ``name``: what the log shows (the e-mail address for a signed-in user, else the typed name);
    ``auth``: one of :data:`AUTH_METHODS`; ``role``: one of :data:`ROLES`; ``subject``: for ``oidc``,
    the provider's stable id (``issuer|sub``), empty otherwise.

    >>> Identity("ana", auth="typed").authenticated
    False
    """

    name: str
    auth: AuthMethod = "typed"
    role: Role = "reviewer"
    subject: str = ""

    def __post_init__(self) -> None:
        if self.auth not in AUTH_METHODS:
            raise UsageError(
                f"unknown identity method {self.auth!r}; expected one of {', '.join(AUTH_METHODS)}"
            )
        if self.role not in ROLES:
            raise UsageError(f"unknown role {self.role!r}; expected one of {', '.join(ROLES)}")
        object.__setattr__(self, "name", clean_name(self.name))

    @property
    def authenticated(self) -> bool:
        """True when a login provider vouched for the name."""
        return self.auth == "oidc"

    @property
    def is_lead(self) -> bool:
        return self.role == "lead"

    def describe(self) -> str:
        """``"ana (signed in, lead)"`` / ``"bo (typed, not verified)"``: plain text."""
        how = {
            "oidc": "signed in",
            "typed": "typed, not verified",
            "import": "imported",
            "script": "script",
        }[self.auth]
        return f"{self.name} ({how}{', lead' if self.is_lead else ''})"


def clean_name(name: object) -> str:
    """A reviewer name stripped of surrounding blanks; UsageError when empty, too long or holding
    control characters (names land in the log, the export and every table).

    >>> clean_name("  Ana ")
    'Ana'
    """
    text = str(name or "").strip()
    if not text:
        raise UsageError("a reviewer needs a name")
    if len(text) > MAX_NAME_LENGTH:
        raise UsageError(
            f"the reviewer name is {len(text)} characters long; at most {MAX_NAME_LENGTH} are accepted"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise UsageError("the reviewer name contains a control character (a tab or a line break)")
    return text


def name_key(name: object) -> str:
    """The one form in which reviewer names are compared: stripped and case-folded
    (:meth:`str.casefold`, Unicode's caseless matching, so ``"Straße"`` and ``"STRASSE"`` match).

    Assignments, the queue (whose items a reviewer holds), the lead list and the audit log compare
    names by this key; every name is still stored and shown as it was typed, and nothing stored is
    rewritten: a decision logged as ``"Ana"`` keeps ``"Ana"``.

    >>> name_key("  Ana "), name_key("ANA") == name_key("ana")
    ('ana', True)
    """
    return str(name or "").strip().casefold()


def same_name(a: object, b: object) -> bool:
    """Whether two reviewer names are the same person's (:func:`name_key`).

    >>> same_name("Ana", " ana"), same_name("Ana", "Anna")
    (True, False)
    """
    return name_key(a) == name_key(b)


def leads_from_env(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The leads named in ``LABELAUDIT_LEADS``, as :func:`name_key`; empty when unset.

    >>> sorted(leads_from_env({"LABELAUDIT_LEADS": "Lea@example.com, max"}))
    ['lea@example.com', 'max']
    """
    raw = (os.environ if environ is None else environ).get(LEADS_ENV, "")
    return frozenset(name_key(p) for p in raw.split(",") if p.strip())


def role_for(names: Iterable[str], leads: frozenset[str]) -> Role:
    """``lead`` when any of ``names`` (a name, an e-mail address) is among ``leads``, or when no
    lead is named at all; else ``reviewer``.

    >>> role_for(["bo"], frozenset()), role_for(["bo"], frozenset({"lea"}))
    ('lead', 'reviewer')
    """
    if not leads:
        return "lead"
    return "lead" if any(name_key(n) in leads for n in names if n) else "reviewer"


def _login_identity(login: Mapping[str, Any], leads: frozenset[str]) -> Identity:
    """The identity the provider's claims vouch for (see :func:`resolve_identity`)."""
    iss, sub = (str(login.get(k) or "").strip() for k in ("iss", "sub"))
    if not sub:
        raise UsageError(
            "the login provider sent no subject ('sub' claim); it is not an OpenID Connect "
            "provider, or its id_token is incomplete"
        )
    email = str(login.get("email") or "").strip().lower()
    if email and login.get("email_verified") is False:
        raise UsageError(
            f"the login provider says the e-mail address {email} is not verified; verify it at "
            "the provider (Keycloak: the user's 'Email verified' switch) and sign in again"
        )
    name = email or str(login.get("preferred_username") or login.get("name") or "").strip()
    if not name:
        raise UsageError(
            "the login provider sent neither an e-mail address nor a user name; configure it to "
            "include the 'email' claim (scope 'email')"
        )
    subject = f"{iss}|{sub}" if iss else sub
    # The role follows what the provider vouches for: the (verified) address or the subject,
    # never a display name a user can often edit at the provider.
    role = role_for([email, subject, sub], leads)
    return Identity(name, auth="oidc", role=role, subject=subject)


def resolve_identity(
    *,
    login: Mapping[str, Any] | None,
    login_configured: bool,
    typed_name: str | None,
    leads: frozenset[str] | None = None,
) -> Identity | None:
    """The identity of the person at the page, or None when they must still sign in or give a name.

    ``login``: the signed-in user's claims (``st.user`` as a dict) when logged in, else None;
    ``login_configured``: the deployment configures login (then a typed name is refused);
    ``typed_name``: the name given in the browser (ignored when login is configured);
    ``leads``: :func:`leads_from_env` by default.

    A signed-in user is named by their e-mail address, lower-cased (addresses are compared
    without case everywhere: assignments, leads), else by ``preferred_username``/``name``; the
    subject is ``iss|sub``. They are a lead when ``LABELAUDIT_LEADS`` holds that address, that
    subject or the bare ``sub``. UsageError when the claims cannot identify anyone: no ``sub``,
    no address or name, or an address the provider marks unverified (``email_verified: false``),
    which anyone could have typed at a provider that lets people sign up.

    >>> resolve_identity(login=None, login_configured=False, typed_name="bo", leads=frozenset())
    Identity(name='bo', auth='typed', role='lead', subject='')
    >>> resolve_identity(login=None, login_configured=True, typed_name="bo") is None
    True
    >>> resolve_identity(login={"iss": "https://idp", "sub": "7", "email": "Ana@X.org"},
    ...                  login_configured=True, typed_name=None, leads=frozenset({"lea@x.org"}))
    Identity(name='ana@x.org', auth='oidc', role='reviewer', subject='https://idp|7')
    """
    leads = leads_from_env() if leads is None else leads
    if login:
        return _login_identity(login, leads)
    if login_configured or not typed_name or not str(typed_name).strip():
        return None
    name = clean_name(typed_name)
    return Identity(name, auth="typed", role=role_for([name], leads))


def require_lead(identity: Identity, what: str) -> None:
    """UsageError unless ``identity`` is a lead: the one check behind every lead-only action.

    >>> require_lead(Identity("bo", role="reviewer"), "export")
    Traceback (most recent call last):
    labelaudit.errors.UsageError: only a lead can export; bo is a reviewer
    """
    if not identity.is_lead:
        raise UsageError(f"only a lead can {what}; {identity.name} is a reviewer")


# --------------------------------------------------------------------------- login configuration
#: Where a deployment configures login: the ``[auth]`` table of Streamlit's secrets file.
SECRETS_FILE = ".streamlit/secrets.toml"
#: Keys of ``[auth]`` that Streamlit's ``st.login`` needs for every provider (docs/review.md).
AUTH_KEYS: tuple[str, ...] = ("redirect_uri", "cookie_secret")
#: Keys a provider needs: in ``[auth]`` itself (the default provider) or in ``[auth.NAME]``.
PROVIDER_KEYS: tuple[str, ...] = ("client_id", "client_secret", "server_metadata_url")
#: Optional provider keys Streamlit also reads (``client_kwargs``: e.g. ``{prompt = "login"}``).
OPTIONAL_PROVIDER_KEYS: tuple[str, ...] = ("client_kwargs", "expose_tokens")
#: The path Streamlit serves the provider's redirect on (``redirect_uri`` must end with it).
CALLBACK_PATH = "/oauth2callback"
#: The provider name Streamlit gives the keys written directly in ``[auth]``.
DEFAULT_PROVIDER = "default"


def login_providers(auth: Mapping[str, Any]) -> list[str]:
    """The providers an ``[auth]`` table configures: ``"default"`` for provider keys written in
    ``[auth]`` itself, then each ``[auth.NAME]`` sub-table, in file order.

    >>> login_providers({"client_id": "a", "keycloak": {"client_id": "b"}})
    ['default', 'keycloak']
    """
    out = [DEFAULT_PROVIDER] if any(k in auth for k in PROVIDER_KEYS) else []
    return out + [k for k, v in auth.items() if isinstance(v, Mapping) and k != "client_kwargs"]


def auth_config_problems(auth: Mapping[str, Any]) -> list[str]:
    """What keeps ``st.login`` from working with this ``[auth]`` table, one message per problem
    (empty when it is complete): the same checks Streamlit makes when someone clicks *Sign in*,
    made before, so the page can say what to fix instead of failing on the click
    (``tests/test_identity.py`` compares them with Streamlit's own on a table of cases).

    >>> auth_config_problems({"redirect_uri": "http://localhost:8501/oauth2callback"})[0]
    '.streamlit/secrets.toml: [auth] has no cookie_secret (a long random string that signs the login cookie)'
    """
    where = f"{SECRETS_FILE}: [auth]"
    problems = []
    redirect = str(auth.get("redirect_uri") or "")
    if not redirect:
        problems.append(
            f"{where} has no redirect_uri (this app's address followed by {CALLBACK_PATH}, "
            f"e.g. http://localhost:8501{CALLBACK_PATH})"
        )
    elif not redirect.startswith(("http://", "https://")) or not redirect.endswith(CALLBACK_PATH):
        problems.append(
            f"{where} redirect_uri is {redirect!r}; expected this app's address followed by "
            f"{CALLBACK_PATH}, e.g. http://localhost:8501{CALLBACK_PATH}"
        )
    if not str(auth.get("cookie_secret") or ""):
        problems.append(
            f"{where} has no cookie_secret (a long random string that signs the login cookie)"
        )
    providers = login_providers(auth)
    if not providers:
        problems.append(
            f"{where} names no provider: add {', '.join(PROVIDER_KEYS)} to [auth] "
            "(or to a table [auth.NAME] per provider)"
        )
    for name in providers:
        section = auth if name == DEFAULT_PROVIDER else auth[name]
        table = "[auth]" if name == DEFAULT_PROVIDER else f"[auth.{name}]"
        if "_" in name:
            problems.append(
                f"{SECRETS_FILE}: {table}: a provider name cannot hold an underscore; rename it"
            )
        missing = [k for k in PROVIDER_KEYS if not section.get(k)]
        if missing:
            problems.append(f"{SECRETS_FILE}: {table} has no {', '.join(missing)}")
        url = str(section.get("server_metadata_url") or "")
        if url and not url.startswith(("http://", "https://")):
            problems.append(
                f"{SECRETS_FILE}: {table} server_metadata_url is {url!r}; expected the provider's "
                "discovery address, ending in /.well-known/openid-configuration"
            )
    return problems
