"""Re-invites (invitation redemption resets): what may be asked, of whom, and what failed.

Three pure parts:

* :func:`parse_reinvite_request` — the body of ``POST /api/v1/reinvites``. Exactly one of
  ``userId`` (a GUID) or ``email`` (a deliberately strict address syntax), a ``reason``,
  optional ``sendInvitationMessage`` and ``redirectUrl`` (https only). The e-mail syntax
  refuses quotes, parentheses, spaces and control characters outright, so nothing odd
  ever reaches an OData ``$filter`` — the value is *also* quoted with
  :func:`shared.domain.odata.quote`, but refusing is the first line. (A guest whose
  address has an apostrophe is re-invited by ``userId``.)
* :func:`check_eligibility` — DESIGN §3.5: only *external* guests (``#EXT#`` in the UPN or
  an external identity; ``userType`` alone proves nothing) whose home domain belongs to a
  registered client. ``POST /invitations`` naming an internal account converts it to B2B,
  one way ("Invite internal users to B2B collaboration"), so members and internal
  ``Guest``-typed accounts are refused before Graph is called.
* :func:`explain_invitation_error` — turns Graph's answer to ``POST /invitations`` into
  a sentence and a fix, and says whether retrying can help.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from shared.domain.clients import ClientRecord
from shared.domain.jobs import JobError, JobState, ReinviteJob
from shared.domain.messages import GUID_PATTERN, AlertKind, AlertRecord, ClientRef, Severity
from shared.domain.principal import ClientPrincipal

# Local part: letters, digits and . _ + - only (no leading, trailing or double dot).
# Domain: LDH labels, a letter-only TLD. Anchored with \Z (``$`` admits a trailing \n).
_LOCAL = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^{_LOCAL}@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$"
_EMAIL_RE = re.compile(EMAIL_PATTERN.removesuffix("$") + r"\Z")
_GUID_RE = re.compile(GUID_PATTERN.removesuffix("$") + r"\Z")
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_LENGTH = 64
MAX_REASON_LENGTH = 500
MAX_URL_LENGTH = 2048
# Reason text: tabs and line breaks are fine, other control characters are not.
_REASON_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The OpenAPI pattern of redirectUrl; the host is checked further below.
REDIRECT_URL_PATTERN = r"""^https://[^\s"'<>\\`{}|^]+$"""
_REDIRECT_URL_RE = re.compile(REDIRECT_URL_PATTERN.removesuffix("$") + r"\Z")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_HOST_RE = re.compile(r"^(?:" + _LABEL + r"\.)*" + _LABEL + r"(?::\d{1,5})?\Z")


def is_strict_email(value: str) -> bool:
    if len(value) > MAX_EMAIL_LENGTH or not _EMAIL_RE.match(value):
        return False
    return len(value.split("@", 1)[0]) <= MAX_LOCAL_LENGTH


def is_guid(value: str) -> bool:
    return bool(_GUID_RE.match(value))


class RequestInvalid(ValueError):
    """A bad request body; ``field`` names the offending field (→ HTTP 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ReinviteRequest(BaseModel):
    """A validated re-invite request (field names as on the wire)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    user_id: StrictStr | None = Field(default=None, alias="userId")
    email: StrictStr | None = None
    reason: StrictStr = Field(min_length=1, max_length=MAX_REASON_LENGTH)
    send_invitation_message: StrictBool = Field(default=False, alias="sendInvitationMessage")
    redirect_url: StrictStr | None = Field(
        default=None, alias="redirectUrl", max_length=MAX_URL_LENGTH
    )


_FIELD_ALIASES = {
    "user_id": "userId",
    "send_invitation_message": "sendInvitationMessage",
    "redirect_url": "redirectUrl",
}


def _https_url(value: str) -> bool:
    if not _REDIRECT_URL_RE.match(value) or _URL_FORBIDDEN.search(value):
        return False
    rest = value[len("https://") :]
    host = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return "@" not in host and bool(_HOST_RE.match(host))


def url_host(url: str) -> str:
    """The lower-cased host of an absolute URL (port 443 dropped); '' when there is none."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return ""
    return host if port in (None, 443) else f"{host}:{port}"


def redirect_allowed(url: str, allowed_hosts: Sequence[str]) -> bool:
    """Only the vendor's own hosts may receive a guest after redemption (issue 13.10)."""
    host = url_host(url)
    return bool(host) and host in {h.strip().lower() for h in allowed_hosts}


def parse_reinvite_request(
    raw: Any, *, allowed_redirect_hosts: Sequence[str] | None = None
) -> ReinviteRequest:
    """Validate a decoded JSON body; raise :class:`RequestInvalid` naming the first bad field.

    ``allowed_redirect_hosts``: the hosts ``redirectUrl`` may point at (the vendor's; from
    ``XTAP_REINVITE_REDIRECT_HOSTS``). ``None`` skips the host check (syntax only).
    """
    if not isinstance(raw, dict):
        raise RequestInvalid("body", "must be a JSON object")
    for key, value in raw.items():
        if value is None:
            # An explicit null is neither "absent" nor a value: say so rather than guess.
            raise RequestInvalid(str(key)[:64], "must not be null")
    try:
        request = ReinviteRequest.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error.get("loc") or ("body",)
        field = _FIELD_ALIASES.get(str(loc[0]), str(loc[0]))[:64]
        if error.get("type") == "extra_forbidden":
            raise RequestInvalid(field, "is not a known field") from None
        raise RequestInvalid(field, str(error.get("msg", "is invalid"))) from None
    if (request.user_id is None) == (request.email is None):
        raise RequestInvalid("userId", "give exactly one of userId or email")
    update: dict[str, Any] = {}
    if request.user_id is not None:
        if not is_guid(request.user_id):
            raise RequestInvalid("userId", "must be an object ID (GUID)")
        update["user_id"] = request.user_id.lower()
    if request.email is not None:
        if not is_strict_email(request.email):
            raise RequestInvalid(
                "email",
                "must be a plain address (letters, digits, . _ + - before the @); "
                "use userId for anything else",
            )
        local, domain = request.email.split("@", 1)
        update["email"] = f"{local}@{domain.lower()}"
    reason = request.reason.strip()
    if not reason:
        raise RequestInvalid("reason", "must not be blank")
    if _REASON_FORBIDDEN.search(reason):
        raise RequestInvalid("reason", "must not contain control characters")
    update["reason"] = reason
    if request.redirect_url is not None and not _https_url(request.redirect_url):
        raise RequestInvalid("redirectUrl", "must be an absolute https:// URL")
    if (
        request.redirect_url is not None
        and allowed_redirect_hosts is not None
        and not redirect_allowed(request.redirect_url, allowed_redirect_hosts)
    ):
        hosts = ", ".join(sorted({h.lower() for h in allowed_redirect_hosts})) or "none"
        raise RequestInvalid(
            "redirectUrl", f"must point at one of the vendor's hosts ({hosts})"[:300]
        )
    return request.model_copy(update=update)


def requester_address(principal: ClientPrincipal) -> str | None:
    """The caller's e-mail address (UPN or mail claim) for "your re-invite is done" mail.

    Only a plain address counts: an app calling with client credentials has none, and a
    display name is not an address (issue 13.8).
    """
    for claim in (
        "preferred_username",
        "upn",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
        "email",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    ):
        for value in principal.values(claim):
            candidate = value.strip()
            if is_strict_email(candidate):
                return candidate
    return None


# ----------------------------------------------------------------------------- guests
GUEST_SELECT = (
    "id",
    "displayName",
    "mail",
    "userPrincipalName",
    "userType",
    "otherMails",
    "identities",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "createdDateTime",
    "accountEnabled",
)

# Issuers that name an identity system, not the guest's organisation.
_NON_DOMAIN_ISSUERS = frozenset({"externalazuread", "microsoftaccount", "mail", "facebook.com"})


@dataclass(frozen=True)
class GuestAddress:
    address: str
    domain: str
    source: str  # mail | upn | identities | otherMails


def _domain_of(address: str) -> str | None:
    if address.count("@") != 1:
        return None
    domain = address.rsplit("@", 1)[1].strip().lower()
    return domain if domain and "." in domain else None


def home_addresses(user: Mapping[str, Any]) -> list[GuestAddress]:
    """Where the guest's home organisation shows, best evidence first.

    * ``mail`` — the address the invitation went to (and a reset goes to);
    * the ``#EXT#`` UPN — ``alice_contoso.com#EXT#@vendor.onmicrosoft.com`` encodes the
      original address with ``@`` replaced by the *last* ``_``;
    * a federated ``identities`` issuer (a SAML/WS-Fed IdP's domain);
    * ``otherMails``.
    """
    out: list[GuestAddress] = []
    mail = user.get("mail")
    if isinstance(mail, str) and (domain := _domain_of(mail)):
        out.append(GuestAddress(mail.strip(), domain, "mail"))
    upn = user.get("userPrincipalName")
    if isinstance(upn, str) and "#EXT#" in upn.upper():
        encoded = upn[: upn.upper().index("#EXT#")]
        if "_" in encoded:
            local, _, domain = encoded.rpartition("_")
            address = f"{local}@{domain}"
            if local and (parsed := _domain_of(address)):
                out.append(GuestAddress(address, parsed, "upn"))
    for identity in user.get("identities") or []:
        if not isinstance(identity, dict) or identity.get("signInType") != "federated":
            continue
        issuer = str(identity.get("issuer") or "").strip().lower()
        if issuer and "." in issuer and issuer not in _NON_DOMAIN_ISSUERS:
            assigned = str(identity.get("issuerAssignedId") or "")
            out.append(GuestAddress(assigned or f"@{issuer}", issuer, "identities"))
    for other in user.get("otherMails") or []:
        if isinstance(other, str) and (domain := _domain_of(other)):
            out.append(GuestAddress(other.strip(), domain, "otherMails"))
    return out


def is_external_account(user: Mapping[str, Any]) -> bool:
    """A B2B account: ``#EXT#`` in its UPN (or in an identity's ``issuerAssignedId``) or a
    federated identity from another identity provider. ``userType`` is not evidence: an
    internal account can be typed Guest, and inviting it converts it to B2B."""
    if "#EXT#" in str(user.get("userPrincipalName") or "").upper():
        return True
    for identity in user.get("identities") or []:
        if not isinstance(identity, Mapping):
            continue
        if identity.get("signInType") == "federated":
            return True
        if "#EXT#" in str(identity.get("issuerAssignedId") or "").upper():
            return True
    return False


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str
    code: str  # eligible | member | internal | no_home_domain | not_a_client
    client: ClientRecord | None = None
    address: GuestAddress | None = None


def check_eligibility(user: Mapping[str, Any], clients: Iterable[ClientRecord]) -> Eligibility:
    """May xtap-watch reset this account's redemption? (DESIGN §3.5)

    The client is decided by the guest's ``mail`` domain when it has one — that is where
    the invitation goes — and only by the other evidence when ``mail`` is empty.
    """
    user_type = str(user.get("userType") or "")
    who = str(user.get("displayName") or user.get("id") or "the account")
    if user_type != "Guest":
        return Eligibility(
            False,
            f"{who} is a {user_type or 'member'} account; xtap-watch only resets B2B guests",
            "member",
        )
    if not is_external_account(user):
        return Eligibility(
            False,
            f"{who} is an internal account (no #EXT# user principal name and no external "
            "identity): an invitation would convert it to B2B collaboration, one way, so "
            "xtap-watch never re-invites it",
            "internal",
        )
    addresses = home_addresses(user)
    if not addresses:
        return Eligibility(
            False,
            f"{who} has no mail, #EXT# UPN or federated identity that names its home",
            "no_home_domain",
        )
    by_domain: dict[str, ClientRecord] = {}
    for client in clients:
        for domain in client.domains:
            by_domain.setdefault(domain.lower(), client)
    candidates = addresses[:1] if addresses[0].source == "mail" else addresses
    for address in candidates:
        match = by_domain.get(address.domain)
        if match is not None:
            return Eligibility(
                True, f"guest of {match.name} ({address.domain})", "eligible", match, address
            )
    return Eligibility(
        False,
        f"{who} is a guest from {addresses[0].domain}, which is not a registered client's domain",
        "not_a_client",
        None,
        addresses[0],
    )


# ------------------------------------------------------------------- Graph errors
TRANSIENT_STATUSES = frozenset({0, 408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ErrorExplanation:
    permanent: bool
    summary: str
    remediation: str


GUEST_INVITER_ROLE_ID = "95e79109-95c0-4d8e-aee3-d01accf2d47b"
# Roles that may invite while allowInvitesFrom = adminsAndGuestInviters ("Only users
# assigned to specific admin roles can invite guest users"), by role template ID.
INVITING_ROLE_IDS: Mapping[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    GUEST_INVITER_ROLE_ID: "Guest Inviter",
}
GUEST_INVITER_FIX = (
    "Assign the Guest Inviter directory role to xtap-watch's service principal (its managed "
    "identity): Entra admin center > Roles & admins > Guest Inviter > Add assignments > "
    "select the identity; or run infra/scripts/grant-graph-permissions.sh "
    "--assign-guest-inviter. Then request the re-invite again."
)


def restricts_app_invites(allow_invites_from: str | None) -> bool:
    """App-only invitations fail while invitations are restricted to administrators."""
    return (allow_invites_from or "").strip().lower() == "adminsandguestinviters"


def explain_invitation_error(
    status: int,
    code: str,
    message: str,
    *,
    allow_invites_from: str | None = None,
    app_can_invite: bool | None = None,
) -> ErrorExplanation:
    """Explain Graph's answer to ``POST /invitations`` with ``resetRedemption: true``.

    ``allow_invites_from`` is the vendor's ``authorizationPolicy.allowInvitesFrom`` when
    the caller read it: ``none`` means invitations are switched off for everyone, and
    ``adminsAndGuestInviters`` refuses app-only invitations unless xtap-watch's service
    principal holds an inviting role — ``app_can_invite`` says whether it does (None:
    unknown). Graph's 403 body is the same generic ``Authorization_RequestDenied`` for
    this and for a guest holding a directory role, so the body alone decides nothing.
    """
    lowered = message.lower()
    if status in TRANSIENT_STATUSES:
        what = "throttled the request" if status == 429 else "did not answer properly"
        return ErrorExplanation(
            False,
            f"Microsoft Graph {what} (HTTP {status} {code}); the reset is retried.",
            "None needed unless it keeps failing; then check Graph service health.",
        )
    if status == 403 and (allow_invites_from == "none" or "invitations not allowed" in lowered):
        return ErrorExplanation(
            True,
            "Guest invitations are switched off in the vendor tenant "
            "(authorizationPolicy.allowInvitesFrom is 'none'), so no invitation can be reset.",
            "Entra admin center → External Identities → External collaboration settings → "
            "Guest invite settings: allow at least admins and users in the Guest Inviter role "
            "to invite (Graph: PATCH /policies/authorizationPolicy allowInvitesFrom="
            "'adminsAndGuestInviters'), then request the re-invite again.",
        )
    if status == 403 and restricts_app_invites(allow_invites_from) and app_can_invite is False:
        return ErrorExplanation(
            True,
            "Guest invitations in the vendor tenant are restricted to admins and Guest "
            "Inviters (allowInvitesFrom = adminsAndGuestInviters) and xtap-watch's service "
            "principal holds none of those roles, so Graph refuses its app-only invitations "
            "(403).",
            GUEST_INVITER_FIX,
        )
    if status == 403 and restricts_app_invites(allow_invites_from) and app_can_invite is None:
        return ErrorExplanation(
            True,
            "Graph refused the reset (403). Guest invitations in the vendor tenant are "
            "restricted to admins and Guest Inviters (allowInvitesFrom = "
            "adminsAndGuestInviters): unless xtap-watch's service principal holds the Guest "
            "Inviter role, every app-only invitation is refused. A guest holding a "
            "directory role is refused too.",
            GUEST_INVITER_FIX
            + " If the identity already holds the role, the guest probably holds a directory "
            "role: a User Administrator resets the redemption in the Entra admin center "
            "(Users → the guest → Reset redemption status).",
        )
    if status == 403:
        return ErrorExplanation(
            True,
            "Graph refused the reset (403 Authorization_RequestDenied). An application cannot "
            "reset the redemption of a guest who holds a directory role, and this is the "
            "usual cause; otherwise xtap-watch's identity lacks User.Invite.All.",
            "If the guest holds a directory role, a User Administrator resets the redemption "
            "in the Entra admin center (Users → the guest → Reset redemption status), or "
            "removes the role first. Otherwise grant User.Invite.All to xtap-watch's identity.",
        )
    if status == 401:
        return ErrorExplanation(
            True,
            "xtap-watch could not authenticate to Microsoft Graph (401).",
            "Check the managed identity / app credential of xtap-watch in the vendor tenant.",
        )
    if status == 404 or (status == 400 and "not found" in lowered):
        return ErrorExplanation(
            True,
            "The user no longer exists in the vendor tenant.",
            "Nothing to reset: invite the person afresh if they still need access.",
        )
    if status == 400 and "member" in lowered:
        return ErrorExplanation(
            True,
            "The account is a member, not a guest: redemption can only be reset for guests.",
            "Members sign in with their own credentials; no re-invite applies.",
        )
    return ErrorExplanation(
        True,
        f"Microsoft Graph refused the reset: HTTP {status} {code}: {message[:300]}",
        "Read the Graph error above; fix the cause and request the re-invite again.",
    )


# ------------------------------------------------------------------------ alerts
def reinvite_result_alert(job: ReinviteJob, now: datetime) -> AlertRecord:
    """The admins' (and requester's) notice of a finished re-invite job."""
    done = job.state is JobState.DONE
    who = job.display_name or job.email or job.user_id
    facts = {
        "Guest": f"{who} ({job.user_id})",
        "Requested by": job.requested_by,
        "Reason": job.reason[:300],
        "Job": job.job_id,
    }
    if job.email:
        facts["Invitation sent to" if job.send_invitation_message else "Address"] = job.email
    if done:
        title = f"Re-invite done: {who}"
        summary = (
            f"The invitation redemption of {who} was reset: the guest keeps its object ID, "
            "groups and app assignments and redeems again at next sign-in"
            + (" (an invitation e-mail was sent)." if job.send_invitation_message else ".")
        )
        steps: tuple[str, ...] = ()
    else:
        error = job.error or JobError()
        title = f"Re-invite failed: {who}"
        summary = error.explanation or error.message or "The re-invite failed."
        steps = (error.remediation,) if error.remediation else ()
        if error.status:
            facts["Graph answer"] = f"{error.status} {error.code}"[:100]
    client = (
        ClientRef(name=job.client_name or job.client_tenant_id, tenant_id=job.client_tenant_id)
        if job.client_tenant_id
        else None
    )
    return AlertRecord(
        dedup_key=f"reinvite:{job.job_id}:{job.state.value}",
        kind=AlertKind.REINVITE_DONE if done else AlertKind.REINVITE_FAILED,
        severity=Severity.INFO if done else Severity.MEDIUM,
        title=title[:300],
        summary=summary,
        client=client,
        who=job.requested_by,
        notify=(job.requester_email,) if job.requester_email else (),
        remediation_steps=steps,
        facts=facts,
        when=now,
        created_at=now,
        source="reinvite",
    )

