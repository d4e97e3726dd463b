"""E-mails: the admins' alert e-mail, the client-facing instructions, and Graph payloads.

Both e-mails come from Jinja2 templates in ``shared/templates/email/`` (HTML autoescaped,
plain text not), rendered from the same facts as the Teams card.

How the plain-text part travels. Graph ``sendMail`` with a JSON body carries exactly one
body (``contentType`` Text or HTML); it has no multipart field, and
``internetMessageHeaders`` only adds ``x-`` headers. So:

* :func:`graph_mail_payload` — the JSON request (the shape of Microsoft's documented
  examples in ``../shared/fixtures/graph/users.sendMail.*.json``) with the HTML body. This
  is the default path; ``EmailContent.text`` stays with the alert for the delivery log and
  the ledger, and is what a reader of the log or a console sees.
* :func:`graph_mime_message` — the documented MIME alternative: a base64
  ``multipart/alternative`` message (text/plain + text/html) posted to the same endpoint
  with ``Content-Type: text/plain``. Use it where recipients need a real text part.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.domain.messages import AlertRecord, FindingRef, Severity
from shared.rendering.content import FindingLine, alert_content
from shared.rendering.onboarding import client_checklist
from shared.rendering.presentation import (
    SEVERITY_LABEL,
    SEVERITY_RANK,
    SEVERITY_TONE,
    TONE_HTML,
    RenderSettings,
    is_web_url,
    kind_label,
    shorten,
)

if TYPE_CHECKING:
    import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "email"
SUBJECT_MAX = 200


@dataclass(frozen=True)
class EmailContent:
    subject: str
    html: str
    text: str


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2  # imported here: a cold start that sends no e-mail never pays for it

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        # *.html.j2 are escaped; *.txt.j2 are plain text, where &amp; would be wrong.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=True, default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(template: str, context: Mapping[str, Any]) -> str:
    return _environment().get_template(template).render(**context)


def one_line(text: str, limit: int = SUBJECT_MAX) -> str:
    """A header-safe single line (no CR/LF, collapsed spaces), cut at ``limit``."""
    return shorten(" ".join(text.split()), limit)


# ---------------------------------------------------------------- admin alert e-mail


def _alert_view(alert: AlertRecord, settings: RenderSettings) -> dict[str, Any]:
    """Everything the admin templates show about one alert (and each digest member):
    the card's content (:mod:`shared.rendering.content`), in full, never trimmed."""
    c = alert_content(alert, settings)
    background, accent = TONE_HTML[c.tone]
    return {
        "kind": c.kind_label,
        "severity": c.severity_label,
        "background": background,
        "accent": accent,
        "title": c.title,
        "summary": c.summary,
        "facts": c.facts,
        "changes": c.changes,
        "evidence": c.evidence,
        "findings": [_finding_view(f) for f in c.findings],
        "advice": c.advice,
        "steps": c.steps,
        "buttons": c.buttons,
        "members": [
            _alert_view(item, settings)
            for item in sorted(alert.items,
                               key=lambda a: (-SEVERITY_RANK[a.severity], a.created_at))
        ],
        "more_members": c.more_members,
        "member_refs": c.member_refs,
        "detail_lines": c.detail_lines,
        "detail_findings": [_finding_view(f) for f in c.detail_findings],
        "detail_facts": c.detail_facts,
        "links": c.links,
        "footer": c.footer,
    }


def _finding_view(f: FindingLine) -> dict[str, str]:
    return {
        "severity": f.severity_label,
        "color": TONE_HTML[SEVERITY_TONE[f.severity]][1],
        "code": f.code,
        "message": f.message,
        "runbook": f.runbook,
    }


def admin_subject(alert: AlertRecord, settings: RenderSettings) -> str:
    """``[xtap-watch] High · Client drifted: <title>``; the kind is said once, so a title
    that already starts with it ("Re-invite done: …") is not prefixed again."""
    label = kind_label(alert.kind, settings)
    title = " ".join(alert.title.split())
    if _starts_with_words(title, label):
        return one_line(f"[xtap-watch] {SEVERITY_LABEL[alert.severity]} · {title}")
    return one_line(f"[xtap-watch] {SEVERITY_LABEL[alert.severity]} · {label}: {title}")


def _starts_with_words(text: str, prefix: str) -> bool:
    def words(value: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", value.lower())

    head = words(prefix)
    return bool(head) and words(text)[: len(head)] == head


def render_admin_email(alert: AlertRecord, settings: RenderSettings) -> EmailContent:
    """The alert for the vendor's admins: the card's content in full (never trimmed)."""
    view = _alert_view(alert, settings)
    context = {"alert": view, "vendor": settings.vendor_name}
    return EmailContent(
        subject=admin_subject(alert, settings),
        html=_render("admin_alert.html.j2", context),
        text=_render("admin_alert.txt.j2", context),
    )


# ------------------------------------------------------------ client-facing e-mail


def render_client_email(
    client_name: str,
    client_tenant_id: str,
    vendor_name: str,
    vendor_domain: str,
    vendor_tenant_id: str,
    findings: Sequence[FindingRef],
    admin_consent_link: str | None,
    *,
    consent_granted: bool = False,
    agreed_codes: Collection[str] = (),
) -> EmailContent:
    """What the vendor sends the client's administrator: the onboarding guide's steps for
    their tenant, the steps the findings require marked, and the admin-consent link.

    It speaks to the client: findings in the client's words, nothing about the vendor's
    own tooling; vendor-side findings (``VENDOR_…``, ``SIGNIN_VENDOR_…``) are left out
    (they are the vendor's to fix), and so are ``agreed_codes`` — a limited scope the
    client agreed and the vendor registered is not "action needed". The data statement
    says what is true: with ``consent_granted`` the vendor's app reads the tenant's
    policies (Policy.Read.All, read-only); without it, the vendor sees only sign-ins.
    """
    if admin_consent_link is not None and not (
        is_web_url(admin_consent_link) and admin_consent_link.startswith("https://")
    ):
        raise ValueError(f"admin_consent_link must be an https URL, got {admin_consent_link!r}")
    checklist = client_checklist(
        vendor_name=vendor_name,
        vendor_domain=vendor_domain,
        vendor_tenant_id=vendor_tenant_id,
        client_tenant_id=client_tenant_id,
        findings=findings,
        agreed_codes=agreed_codes,
    )
    context = {
        "client_name": client_name,
        "client_tenant_id": client_tenant_id,
        "vendor": vendor_name,
        "vendor_domain": vendor_domain,
        "vendor_tenant_id": vendor_tenant_id,
        "checklist": checklist,
        "needed": [s.number for s in checklist.steps if s.status == "needed"],
        "admin_consent_link": admin_consent_link,
        "consent_granted": consent_granted,
        "agreed_scope": bool(agreed_codes) and any(
            f.code in agreed_codes for f in findings),
    }
    if any(f.severity is Severity.HIGH for f in checklist.findings):
        subject = (f"Action needed: {client_name} users cannot sign in to {vendor_name} "
                   "until your cross-tenant access settings allow it")
    elif any(s.status == "needed" for s in checklist.steps):
        subject = f"Action needed: update your Microsoft Entra settings for {vendor_name}"
    elif checklist.findings:
        subject = f"Please check your Microsoft Entra settings for {vendor_name} sign-in"
    elif context["agreed_scope"]:
        subject = f"Your Microsoft Entra settings for {vendor_name} sign-in: no change needed"
    else:
        subject = f"Set up Microsoft Entra cross-tenant access for {vendor_name} sign-in"
    return EmailContent(
        subject=one_line(subject),
        html=_render("client_instructions.html.j2", context),
        text=_render("client_instructions.txt.j2", context),
    )


# ------------------------------------------------------------------ Graph payloads

_ADDRESS = re.compile(r"^[^@\s<>\",;]+@[^@\s<>\",;]+\.[^@\s<>\",;]+$")


def _recipients(addresses: Sequence[str], field: str) -> list[dict[str, Any]]:
    for address in addresses:
        if not _ADDRESS.match(address):
            raise ValueError(f"{field}: not an e-mail address: {address!r}")
    return [{"emailAddress": {"address": address}} for address in addresses]


def graph_mail_payload(
    email: EmailContent,
    to: list[str],
    *,
    cc: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
    save_to_sent_items: bool = True,
) -> dict[str, Any]:
    """The JSON body of ``POST /users/{sender}/sendMail`` (Graph answers 202, no body).

    ``headers`` become ``internetMessageHeaders`` (Graph accepts custom ``x-`` headers
    only) — useful for an ``x-xtap-dedup-key`` that support can search for.
    ``saveToSentItems`` is a boolean (one documented example prints it as a string).
    """
    if not to:
        raise ValueError("to: at least one recipient is required")
    message: dict[str, Any] = {
        "subject": one_line(email.subject),
        "body": {"contentType": "HTML", "content": email.html},
        "toRecipients": _recipients(to, "to"),
    }
    if cc:
        message["ccRecipients"] = _recipients(cc, "cc")
    if headers:
        for name, value in headers.items():
            if not name.lower().startswith("x-") or "\n" in value or "\r" in value:
                raise ValueError(f"headers: {name!r} must be an x- header with a one-line value")
        message["internetMessageHeaders"] = [
            {"name": name, "value": value} for name, value in headers.items()
        ]
    return {"message": message, "saveToSentItems": save_to_sent_items}


def graph_mime_message(email: EmailContent, sender: str, to: list[str]) -> bytes:
    """The base64 MIME body for ``sendMail`` with ``Content-Type: text/plain``: a
    ``multipart/alternative`` message whose text part is ``email.text``."""
    import base64
    from email.message import EmailMessage
    from email.policy import SMTP

    _recipients([sender], "sender")
    if not to:
        raise ValueError("to: at least one recipient is required")
    _recipients(to, "to")
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = one_line(email.subject)
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return base64.b64encode(message.as_bytes())
