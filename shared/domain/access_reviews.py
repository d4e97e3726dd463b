"""The recurring access review of one client's guests: its definition, and its failures.

One definition per client, found again by its display name (``xtap-watch guest review:
{client}``), so "ensure" never creates a second one (DESIGN §3.5). The scope is a
Microsoft Graph query over the vendor tenant's users: guests whose ``mail`` ends with one
of the client's domains. Graph documents group-based guest scopes as well
(``/groups/{id}/transitiveMembers/microsoft.graph.user/?$filter=(userType eq 'Guest')``);
:func:`guest_scope_query` takes a group ID for tenants that keep a guests group per client.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.domain.clients import ClientRecord
from shared.domain.messages import AlertKind, AlertRecord, ClientRef, Severity
from shared.domain.odata import quote

NAME_PREFIX = "xtap-watch guest review: "
QUERY_SCOPE = "#microsoft.graph.accessReviewQueryScope"
INSTANCE_DURATION_DAYS = 14
RECURRENCE_MONTHS = 3  # quarterly, as Microsoft suggests for guest reviews
# "Recommendation": when a reviewer does not answer, Entra applies its own recommendation
# (deny guests inactive for 30 days, keep active ones). A blanket "Deny" would remove
# active client users whose reviewer was on holiday: a support flood of its own.
DEFAULT_DECISION = "Recommendation"


def review_display_name(client: ClientRecord) -> str:
    return (NAME_PREFIX + client.name)[:256]


def guest_scope_query(domains: Iterable[str], group_id: str | None = None) -> str:
    """The users a client's review covers. Every literal goes through :func:`quote`."""
    if group_id:
        return (
            f"/groups/{group_id}/transitiveMembers/microsoft.graph.user/"
            "?$filter=(userType eq 'Guest')"
        )
    ends = [f"endswith(mail,{quote('@' + d.lower())})" for d in domains if d.strip()]
    if not ends:
        raise ValueError("a client needs at least one domain to scope its guest review")
    clause = ends[0] if len(ends) == 1 else "(" + " or ".join(ends) + ")"
    return f"/users?$filter=(userType eq 'Guest') and {clause}"


def build_review_definition(
    client: ClientRecord,
    reviewer_ids: Iterable[str],
    *,
    vendor_name: str,
    start: date,
    group_id: str | None = None,
) -> dict[str, Any]:
    """The body of ``POST /identityGovernance/accessReviews/definitions``."""
    reviewers = [{"query": f"/users/{rid}", "queryType": "MicrosoftGraph"} for rid in reviewer_ids]
    if not reviewers:
        raise ValueError("XTAP_ACCESS_REVIEW_REVIEWERS names no reviewer")
    return {
        "displayName": review_display_name(client),
        "descriptionForAdmins": (
            f"Recurring review of {client.name} guests in {vendor_name}, kept by xtap-watch."
        )[:1024],
        "descriptionForReviewers": (
            f"Confirm that each {client.name} guest still needs access to {vendor_name}."
        )[:1024],
        "scope": {
            "@odata.type": QUERY_SCOPE,
            "query": guest_scope_query(client.domains, group_id),
            "queryType": "MicrosoftGraph",
        },
        "reviewers": reviewers,
        "settings": {
            "mailNotificationsEnabled": True,
            "reminderNotificationsEnabled": True,
            "justificationRequiredOnApproval": True,
            "defaultDecisionEnabled": True,
            "defaultDecision": DEFAULT_DECISION,
            "instanceDurationInDays": INSTANCE_DURATION_DAYS,
            "autoApplyDecisionsEnabled": True,
            "recommendationsEnabled": True,
            "recurrence": {
                "pattern": {
                    "type": "absoluteMonthly",
                    "interval": RECURRENCE_MONTHS,
                    "dayOfMonth": min(start.day, 28),
                },
                "range": {"type": "noEnd", "startDate": start.isoformat()},
            },
        },
    }


def is_licence_error(status: int, code: str, message: str) -> bool:
    """Access reviews need Entra ID P2 / ID Governance; Graph answers 403 naming the licence."""
    text = f"{code} {message}".lower()
    return status == 403 and ("licens" in text or "licenc" in text or "notlicensed" in text)


@dataclass(frozen=True)
class ReviewFailure:
    permanent: bool
    summary: str
    remediation: str


def explain_review_error(status: int, code: str, message: str) -> ReviewFailure:
    if status in (0, 408, 429, 500, 502, 503, 504):
        return ReviewFailure(
            False, f"Microsoft Graph answered {status} {code}; retried.", "None needed."
        )
    if is_licence_error(status, code, message):
        return ReviewFailure(
            True,
            "The vendor tenant has no licence for access reviews (Microsoft Entra ID P2 or "
            f"ID Governance): {message[:300]}",
            "Assign Entra ID P2 or ID Governance licences in the vendor tenant, or stop "
            "scheduling reviews (remove XTAP_ACCESS_REVIEW_REVIEWERS).",
        )
    if status == 403:
        return ReviewFailure(
            True,
            f"Graph refused to create the access review (403 {code}): {message[:300]}",
            "Grant AccessReview.ReadWrite.All (application) to xtap-watch's identity.",
        )
    return ReviewFailure(
        True,
        f"Graph refused the access review definition: HTTP {status} {code}: {message[:300]}",
        "Check the reviewers in XTAP_ACCESS_REVIEW_REVIEWERS and the client's domains.",
    )


def review_created_alert(
    client: ClientRecord, definition_id: str, display_name: str, now: datetime
) -> AlertRecord:
    return AlertRecord(
        dedup_key=f"access-review-created:{client.tenant_id}:{definition_id}",
        kind=AlertKind.ACCESS_REVIEW_CREATED,
        severity=Severity.INFO,
        title=f"Guest access review created for {client.name}",
        summary=(
            f"A recurring review '{display_name}' of {client.name}'s guests now exists "
            f"(every {RECURRENCE_MONTHS} months, {INSTANCE_DURATION_DAYS} days to answer; "
            "unanswered guests get Entra's recommendation applied)."
        ),
        client=ClientRef(name=client.name, tenant_id=client.tenant_id, domains=client.domains),
        remediation_steps=(
            "Nothing to do now. Reviewers receive mail when each review instance starts.",
        ),
        facts={"Definition ID": definition_id, "Client": client.name},
        when=now,
        created_at=now,
        source="review",
    )


def review_failed_alert(
    client_name: str, tenant_id: str, failure: ReviewFailure, now: datetime, job_id: str
) -> AlertRecord:
    return AlertRecord(
        dedup_key=f"access-review-failed:{tenant_id}:{now:%Y%m%d}",
        kind=AlertKind.ACCESS_REVIEW_FAILED,
        severity=Severity.MEDIUM,
        title=f"Guest access review for {client_name} could not be created",
        summary=failure.summary,
        client=ClientRef(name=client_name, tenant_id=tenant_id),
        remediation_steps=(failure.remediation,),
        facts={"Client": client_name, "Job": job_id},
        when=now,
        created_at=now,
        source="review",
    )
