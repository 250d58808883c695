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


def leads_from_env(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The leads named in ``LABELAUDIT_LEADS``, lower-cased; empty when unset.

    >>> sorted(leads_from_env({"LABELAUDIT_LEADS": "Lea@example.com, max"}))
    ['lea@example.com', 'max']
    """
    raw = (os.environ if environ is None else environ).get(LEADS_ENV, "")
    return frozenset(p.strip().lower() for p in raw.split(",") if p.strip())


def role_for(names: Iterable[str], leads: frozenset[str]) -> Role:
    """``lead`` when any of ``names`` (a name, an e-mail address) is among ``leads``, or when no
    lead is named at all; else ``reviewer``.

    >>> role_for(["bo"], frozenset()), role_for(["bo"], frozenset({"lea"}))
    ('lead', 'reviewer')
    """
    if not leads:
        return "lead"
    return "lead" if any(str(n).strip().lower() in leads for n in names if n) else "reviewer"


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

    >>> resolve_identity(login=None, login_configured=False, typed_name="bo", leads=frozenset())
    Identity(name='bo', auth='typed', role='lead', subject='')
    >>> resolve_identity(login=None, login_configured=True, typed_name="bo") is None
    True
    """
    leads = leads_from_env() if leads is None else leads
    if login:
        email = str(login.get("email") or "").strip()
        name = email or str(login.get("name") or login.get("preferred_username") or "").strip()
        if not name:
            raise UsageError(
                "the login provider sent neither an e-mail address nor a name; configure it to "
                "include the 'email' (or 'name') claim"
            )
        subject = "|".join(str(login.get(k) or "") for k in ("iss", "sub")).strip("|")
        names = [email, str(login.get("name") or ""), str(login.get("preferred_username") or "")]
        return Identity(name, auth="oidc", role=role_for(names, leads), subject=subject)
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
