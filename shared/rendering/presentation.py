"""Wording, colours and links shared by the Teams cards and the e-mails.

One place decides how a severity looks, what each alert kind is called and what the
reader should do about it, and which Entra admin center page or runbook a button opens,
so a card and its e-mail never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote, urlsplit

from shared.domain.messages import AlertKind, AlertRecord, Severity
from shared.domain.runbooks import LOCAL_APP_URL, app_runbook_base, runbook_url

# Entra admin center blades (paths after the portal base URL). The portal has no public
# deep link to one partner entry, so the cross-tenant page opens the organisation list,
# where the tenant ID shown on the card finds the entry.
ENTRA_CROSS_TENANT_ACCESS = (
    "#view/Microsoft_AAD_IAM/CompanyRelationshipsMenuBlade/~/CrossTenantAccessSettings"
)
ENTRA_ALL_USERS = "#view/Microsoft_AAD_UsersAndTenants/UserManagementMenuBlade/~/AllUsers"
ENTRA_ACCESS_REVIEWS = "#view/Microsoft_AAD_ERM/DashboardBlade/~/Controls"


@dataclass(frozen=True)
class RenderSettings:
    """What the renderers need from configuration, and nothing else.

    Built by the composition root from ``shared.config.Settings`` (``vendor_name``,
    ``entra_portal_url``, ``docs_base_url``) so rendering stays independent of config.
    ``api_base_url`` is the public base of the support HTTP API (``https://<app>``); when
    set, re-invite cards link to ``{api_base_url}/api/v1/reinvites/{job_id}``.
    """

    vendor_name: str = "OSTTRA"
    entra_portal_url: str = "https://entra.microsoft.com"
    docs_base_url: str = app_runbook_base(LOCAL_APP_URL)
    api_base_url: str | None = None

    def runbook_url(self, finding_code: str) -> str:
        """The finding's page (one check, one page): see ``shared/domain/runbooks.py``."""
        return runbook_url(self.docs_base_url, finding_code)

    def entra_url(self, blade: str) -> str:
        return f"{self.entra_portal_url.rstrip('/')}/{blade}"

    def reinvite_status_url(self, job_id: str) -> str | None:
        if not self.api_base_url:
            return None
        return f"{self.api_base_url.rstrip('/')}/api/v1/reinvites/{quote(job_id, safe='')}"


# Ranked so that ``max`` picks the one a person must look at first. REVIEW ("unknown
# shape, a person must look") sits above LOW: it is not known to be harmless.
SEVERITY_RANK: dict[Severity, int] = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.REVIEW: 2,
    Severity.MEDIUM: 3,
    Severity.HIGH: 4,
}

SEVERITY_LABEL: dict[Severity, str] = {
    Severity.HIGH: "High",
    Severity.MEDIUM: "Medium",
    Severity.LOW: "Low",
    Severity.INFO: "Info",
    Severity.REVIEW: "Needs review",
}

Tone = Literal["attention", "warning", "accent", "good", "emphasis"]

SEVERITY_TONE: dict[Severity, Tone] = {
    Severity.HIGH: "attention",
    Severity.MEDIUM: "warning",
    Severity.REVIEW: "warning",
    Severity.LOW: "accent",
    Severity.INFO: "emphasis",
}

# E-mail colours for each tone, matching the card preview's Teams-like light theme
# (devtools/cardrender/hostconfig-teams-light.json).
TONE_HTML: dict[Tone, tuple[str, str]] = {  # (background, accent for borders and labels)
    "attention": ("#FDE7E9", "#C4314B"),
    "warning": ("#FBF6D9", "#A2631B"),
    "accent": ("#E8EBFA", "#5B5FC7"),
    "good": ("#E7F2DA", "#237B4B"),
    "emphasis": ("#F5F5F5", "#616161"),
}


@dataclass(frozen=True)
class KindPresentation:
    label: str  # short name of the alert kind, shown above the title
    what_to_do: str  # fixed advice, shown when the alert carries no step; {vendor}
    entra_blade: str | None  # the admin center page the main button opens
    entra_title: str  # the button's title (short: Teams cuts long ones)
    good_news: bool = False  # shown green whatever the severity


KIND_PRESENTATION: dict[AlertKind, KindPresentation] = {
    AlertKind.CLIENT_DRIFTED: KindPresentation(
        "Client drifted",
        "This client's users cannot reach {vendor} until the client's administrator "
        "allows it in their outbound cross-tenant access settings. Send them the client "
        "instructions e-mail and follow the runbook for each finding.",
        ENTRA_CROSS_TENANT_ACCESS,
        "Cross-tenant access",
    ),
    AlertKind.CLIENT_REMINDER: KindPresentation(
        "Still drifted (reminder)",
        "This problem is still open. The client's users still cannot reach {vendor}; "
        "check that the client's administrator received the instructions.",
        ENTRA_CROSS_TENANT_ACCESS,
        "Cross-tenant access",
    ),
    AlertKind.CLIENT_RECOVERED: KindPresentation(
        "Client recovered",
        "No action needed: the client's outbound settings allow {vendor} again.",
        ENTRA_CROSS_TENANT_ACCESS,
        "Cross-tenant access",
        good_news=True,
    ),
    AlertKind.CLIENT_CONSENT_MISSING: KindPresentation(
        "Consent missing",
        "We cannot read this client's cross-tenant access settings: the read-only app's "
        "consent was not granted or was removed. Until a client administrator grants it "
        "again, only sign-in failures show a drift. Send them the admin-consent link.",
        None,
        "",
    ),
    AlertKind.CLIENT_CONSENT_RESTORED: KindPresentation(
        "Consent restored",
        "No action needed: the client's settings can be read again, and the next sweep "
        "checks them.",
        None,
        "",
        good_news=True,
    ),
    AlertKind.CLIENT_POSTURE_UNKNOWN: KindPresentation(
        "Posture unknown",
        "We cannot tell whether this client's users can reach {vendor}: the cause and "
        "its fix are below. Until it is fixed a drift would go unnoticed; the sign-in log "
        "is still watched.",
        ENTRA_CROSS_TENANT_ACCESS,
        "Cross-tenant access",
    ),
    AlertKind.CLIENT_POSTURE_KNOWN: KindPresentation(
        "Posture known again",
        "No action needed: the client's settings can be evaluated again.",
        None,
        "",
        good_news=True,
    ),
    AlertKind.SIGNIN_EVIDENCE: KindPresentation(
        "Sign-in failures",
        "{vendor}'s sign-in log shows cross-tenant policy failures for this client. "
        "Confirm with the client's administrator: their outbound settings probably block "
        "{vendor} (we cannot read them without their consent).",
        ENTRA_CROSS_TENANT_ACCESS,
        "Cross-tenant access",
    ),
    AlertKind.VENDOR_SETTING_CHANGED: KindPresentation(
        "{vendor} setting changed",
        "Someone changed {vendor}'s own cross-tenant access settings. If the change was "
        "not planned, restore the previous value in the Entra admin center.",
        ENTRA_CROSS_TENANT_ACCESS,
        "Cross-tenant access",
    ),
    AlertKind.VENDOR_POSTURE: KindPresentation(
        "{vendor} inbound settings",
        "{vendor}'s own inbound settings for this client need attention; the runbook for "
        "each finding has the exact fix.",
        ENTRA_CROSS_TENANT_ACCESS,
        "Cross-tenant access",
    ),
    AlertKind.REINVITE_DONE: KindPresentation(
        "Re-invite done",
        "The guest's invitation was reset; the guest redeems it again at the next "
        "sign-in and keeps their object ID, groups and app assignments.",
        ENTRA_ALL_USERS,
        "Entra users",
        good_news=True,
    ),
    AlertKind.REINVITE_FAILED: KindPresentation(
        "Re-invite failed",
        "The invitation reset did not go through. Check the error, then request the "
        "re-invite again through the support API.",
        ENTRA_ALL_USERS,
        "Entra users",
    ),
    AlertKind.ACCESS_REVIEW_CREATED: KindPresentation(
        "Access review created",
        "An access review of this client's guests is in place; Entra notifies the reviewers.",
        ENTRA_ACCESS_REVIEWS,
        "Access reviews",
        good_news=True,
    ),
    AlertKind.ACCESS_REVIEW_FAILED: KindPresentation(
        "Access review failed",
        "The access review could not be created. Check the error (licence or "
        "AccessReview.ReadWrite.All permission) and request it again.",
        ENTRA_ACCESS_REVIEWS,
        "Access reviews",
    ),
    AlertKind.PENDING_GUESTS: KindPresentation(
        "Guests not redeemed",
        "These guests were invited but have not accepted. Re-invite them or ask the "
        "client whether they still need access.",
        ENTRA_ALL_USERS,
        "Entra users",
    ),
    AlertKind.DELIVERY_FAILING: KindPresentation(
        "Alert delivery failing",
        "Alerts are not reaching one of their channels. Fix the route (webhook URL, "
        "mailbox permission); alerts stay in the outbox until they are delivered.",
        None,
        "",
    ),
    AlertKind.SOURCE_UNAVAILABLE: KindPresentation(
        "Log source failing",
        "A log that xtap-watch reads is failing, so part of its watch is blind until it "
        "is fixed. The steps below name the cause and the fix.",
        None,
        "",
    ),
    AlertKind.POISON_MESSAGE: KindPresentation(
        "Poison message",
        "A queue message failed every attempt and was moved to the poison queue. "
        "Inspect it, fix the cause, then re-queue or delete it.",
        None,
        "",
    ),
    AlertKind.WATCHDOG: KindPresentation(
        "Watchdog",
        "xtap-watch checks itself: part of its watch has stopped (an audit scan that does "
        "not complete, a sweep that leaves clients unchecked, a channel that keeps failing). "
        "The steps below say where to look; a note follows when it is back to normal.",
        None,
        "",
    ),
    AlertKind.HEARTBEAT: KindPresentation(
        "Daily heartbeat",
        "The daily summary of the watch. It arrives every day at the same hour: the day it "
        "does not, the alert path (the Teams flow, or the app) is broken.",
        None,
        "",
        good_news=True,
    ),
    AlertKind.DIGEST: KindPresentation(
        "Digest",
        "Many alerts came from one run, often after a change to a default policy. Start "
        "with the most severe; each alert's details are in the e-mail.",
        ENTRA_CROSS_TENANT_ACCESS,
        "Cross-tenant access",
    ),
}


def presentation_of(kind: AlertKind) -> KindPresentation:
    """The kind's presentation; a kind added to the schema before it got one still
    renders (a plain card) instead of sending its alert to the poison queue."""
    return KIND_PRESENTATION.get(kind) or KindPresentation(
        kind.value.replace("_", " ").capitalize(),
        "See the details below.",
        None,
        "",
    )


def kind_label(kind: AlertKind, settings: RenderSettings) -> str:
    return presentation_of(kind).label.format(vendor=settings.vendor_name)


def what_to_do(kind: AlertKind, settings: RenderSettings) -> str:
    return presentation_of(kind).what_to_do.format(vendor=settings.vendor_name)


def alert_tone(alert: AlertRecord) -> Tone:
    if presentation_of(alert.kind).good_news:
        return "good"
    return SEVERITY_TONE[alert.severity]


def format_when(when: datetime) -> str:
    """Unambiguous UTC time for people in any time zone."""
    if when.tzinfo is None:  # producers should send aware times; naive means UTC here
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def is_web_url(url: str) -> bool:
    """Only http(s) links become buttons (no ``javascript:``, ``file:``, ...)."""
    parts = urlsplit(url)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


@dataclass(frozen=True)
class Button:
    title: str
    url: str


# Teams shares the card's width among its buttons and cuts longer titles with "…"; titles
# up to this length stay whole with four buttons on a channel card (measured with the
# official renderer at the preview's 560 px, tests/integration/test_card_render.py).
BUTTON_TITLE_MAX = 20


def alert_buttons(alert: AlertRecord, settings: RenderSettings, limit: int) -> list[Button]:
    """The links a reader needs first, de-duplicated, at most ``limit``, titles never cut.

    Order: the Entra admin center page for this kind, the most severe finding's runbook,
    the re-invite status page (from ``facts['job_id']``), then the producer's links whose
    titles are short enough for a button. Other links are listed in the details.
    """
    candidates: list[Button] = []
    presentation = presentation_of(alert.kind)
    if presentation.entra_blade:
        candidates.append(
            Button(presentation.entra_title, settings.entra_url(presentation.entra_blade))
        )
    if alert.findings:
        top = max(alert.findings, key=lambda f: SEVERITY_RANK[f.severity])
        candidates.append(Button("Runbook", settings.runbook_url(top.code)))
    job_id = alert.facts.get("job_id") or alert.facts.get("Job")
    if job_id and alert.kind in (AlertKind.REINVITE_DONE, AlertKind.REINVITE_FAILED):
        status_url = settings.reinvite_status_url(job_id)
        if status_url:
            candidates.append(Button("Re-invite status", status_url))
    candidates.extend(
        Button(" ".join(link.title.split()), link.url)
        for link in alert.links
        if len(" ".join(link.title.split())) <= BUTTON_TITLE_MAX
    )

    chosen: list[Button] = []
    seen: set[str] = set()
    for button in candidates:
        if button.url in seen or not is_web_url(button.url) or not button.title:
            continue
        seen.add(button.url)
        chosen.append(button)
        if len(chosen) == limit:
            break
    return chosen


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"
