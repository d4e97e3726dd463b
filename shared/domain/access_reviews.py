"""The recurring access review of one client's guests: its group, definition and failures.

An access review reviews access *to a resource* — a group, a team, a role or an access
package (Graph "Configure the scope of your access review"); a bare ``/users?$filter=…``
query is not a documented scope, and guests cannot be filtered by home domain in one
(``endswith`` needs advanced-query headers the review service does not send). So each
client gets a **guests group** that xtap-watch keeps: an assigned (not dynamic) security
group ``xtap-watch guests: {client}`` found again by its ``mailNickname``
(``xtap-guests-{client tenant ID}``), holding exactly the enabled external guests whose
home domain is the client's. The review covers "guests of this group"
(``/groups/{id}/transitiveMembers/microsoft.graph.user/?$filter=(userType eq 'Guest')``,
the documented Example 2).

Why app-maintained and not a dynamic membership rule: a rule can express the domain
(``user.userType -eq "Guest" -and user.mail -endsWith "@contoso.com"``; ``-endsWith`` is
a supported operator) but members of a dynamic group cannot be removed by anyone — so a
"Deny" decision could never be applied — and dynamic groups need an Entra ID P1 licence
per member. Maintaining the group needs ``Group.Create`` (create it; the app becomes its
owner) and ``GroupMember.ReadWrite.All`` (add and remove members).

Denied guests are blocked from signing in and removed from the tenant 30 days later
(``disableAndDeleteUserApplyAction``): removing them from the group alone would change
nothing (the group grants no access) and the next membership sync would add them back.
A guest that nobody reviews keeps its access (no default decision): a reviewer on holiday
must not lock a client's staff out.

One definition per client, found again by its display name (``xtap-watch guest review:
{client}``), so "ensure" never creates a second one (DESIGN §3.5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.domain.clients import ClientRecord
from shared.domain.messages import AlertKind, AlertRecord, ClientRef, Severity
from shared.domain.reinvite import check_eligibility

NAME_PREFIX = "xtap-watch guest review: "
GROUP_PREFIX = "xtap-watch guests: "
GROUP_NICKNAME_PREFIX = "xtap-guests-"
QUERY_SCOPE = "#microsoft.graph.accessReviewQueryScope"
DISABLE_AND_DELETE = "#microsoft.graph.disableAndDeleteUserApplyAction"
INSTANCE_DURATION_DAYS = 14
RECURRENCE_MONTHS = 3  # quarterly, as Microsoft suggests for guest reviews


def review_display_name(client: ClientRecord) -> str:
    return (NAME_PREFIX + client.name)[:256]


def guests_group_nickname(client: ClientRecord) -> str:
    """Stable across renames of the client; ≤ 64 characters, no characters Graph refuses."""
    return GROUP_NICKNAME_PREFIX + client.tenant_id.lower()


def guests_group_body(client: ClientRecord, vendor_name: str) -> dict[str, Any]:
    """``POST /groups``: an assigned security group (not mail-enabled, not dynamic)."""
    return {
        "displayName": (GROUP_PREFIX + client.name)[:256],
        "description": (
            f"Guests from {client.name} in {vendor_name}, kept by xtap-watch for their access "
            "review. Managed automatically: manual changes are reverted."
        )[:1024],
        "mailEnabled": False,
        "mailNickname": guests_group_nickname(client),
        "securityEnabled": True,
        "groupTypes": [],
    }


def guest_scope_query(group_id: str) -> str:
    """Documented scope "all guest users assigned to a group" (Example 2)."""
    if not group_id or "/" in group_id or "?" in group_id:
        raise ValueError("a guests group ID is required for the review scope")
    return (
        f"/groups/{group_id}/transitiveMembers/microsoft.graph.user/?$filter=(userType eq 'Guest')"
    )


def scope_group_id(definition: Mapping[str, Any]) -> str | None:
    """The group an existing definition reviews, if its scope is a group scope."""
    scope = definition.get("scope")
    query = str(scope.get("query") or "") if isinstance(scope, Mapping) else ""
    if not query.startswith("/groups/"):
        return None
    return query.split("/")[2].lower() or None


@dataclass(frozen=True)
class MembershipPlan:
    add: tuple[str, ...]
    remove: tuple[str, ...]
    members: int  # how many eligible guests the group holds afterwards


def plan_membership(
    client: ClientRecord,
    candidates: Iterable[Mapping[str, Any]],
    current_member_ids: Iterable[str],
) -> MembershipPlan:
    """Who joins and who leaves the client's guests group.

    Members are the *enabled external* guests whose home domain is the client's
    (:func:`shared.domain.reinvite.check_eligibility`). A disabled guest — e.g. one a
    review denied — is not added back; anyone else in the group (a member account added
    by hand, a guest of another company) is removed.
    """
    eligible: set[str] = set()
    for user in candidates:
        if user.get("accountEnabled") is False:
            continue
        verdict = check_eligibility(user, [client])
        if verdict.eligible and user.get("id"):
            eligible.add(str(user["id"]).lower())
    current = {m.lower() for m in current_member_ids}
    return MembershipPlan(
        add=tuple(sorted(eligible - current)),
        remove=tuple(sorted(current - eligible)),
        members=len(eligible),
    )


def build_review_definition(
    client: ClientRecord,
    reviewer_ids: Iterable[str],
    *,
    vendor_name: str,
    start: date,
    group_id: str,
) -> dict[str, Any]:
    """The body of ``POST /identityGovernance/accessReviews/definitions``."""
    reviewers = [{"query": f"/users/{rid}", "queryType": "MicrosoftGraph"} for rid in reviewer_ids]
    if not reviewers:
        raise ValueError("XTAP_ACCESS_REVIEW_REVIEWERS names no reviewer")
    return {
        "displayName": review_display_name(client),
        "descriptionForAdmins": (
            f"Recurring review of {client.name} guests in {vendor_name}, kept by xtap-watch "
            f"(scope: the group '{GROUP_PREFIX}{client.name}')."
        )[:1024],
        "descriptionForReviewers": (
            f"Confirm that each {client.name} guest still needs access to {vendor_name}. "
            "Denied guests are blocked at once and removed 30 days later."
        )[:1024],
        "scope": {
            "@odata.type": QUERY_SCOPE,
            "query": guest_scope_query(group_id),
            "queryType": "MicrosoftGraph",
        },
        "reviewers": reviewers,
        "settings": {
            "mailNotificationsEnabled": True,
            "reminderNotificationsEnabled": True,
            "justificationRequiredOnApproval": True,
            "defaultDecisionEnabled": False,
            "defaultDecision": "None",
            "instanceDurationInDays": INSTANCE_DURATION_DAYS,
            "autoApplyDecisionsEnabled": True,
            "recommendationsEnabled": True,
            "applyActions": [{"@odata.type": DISABLE_AND_DELETE}],
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
    # What caused it, when the cause is the vendor's and not one client's (a licence, a
    # permission, the same Graph refusal at the same step): failures of one cause collapse
    # into one alert (issue 14.2). Empty: specific to this client.
    cause: str = ""


# What each step of an ensure needs (least privilege, application permissions).
STEP_PERMISSIONS: Mapping[str, str] = {
    "guests": "User.Read.All (read the client's guests)",
    "group": "Group.Create (create the client's guests group; the app becomes its owner)",
    "members": "GroupMember.ReadWrite.All (keep the guests group's members)",
    "definition": "AccessReview.ReadWrite.All (create the access review definition)",
}


def explain_review_error(
    status: int, code: str, message: str, *, step: str = "definition"
) -> ReviewFailure:
    """Graph's refusal at one step of "ensure the client's guest access review"."""
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
            cause="licence",
        )
    needs = STEP_PERMISSIONS.get(step, STEP_PERMISSIONS["definition"])
    if status == 403:
        return ReviewFailure(
            True,
            f"Graph refused step '{step}' of the guest access review (403 {code}): {message[:300]}",
            f"Grant {needs} as an application permission to xtap-watch's identity "
            "(infra/scripts/grant-graph-permissions.sh --grant-missing).",
            cause=f"{step}:403:{code}",
        )
    if step == "definition":
        remediation = "Check the reviewers in XTAP_ACCESS_REVIEW_REVIEWERS (user object IDs)."
    else:
        remediation = f"Check the guests group of this client (step '{step}') in Entra."
    return ReviewFailure(
        True,
        f"Graph refused step '{step}' of the guest access review: HTTP {status} {code}: "
        f"{message[:300]}",
        remediation,
        cause=f"{step}:{status}:{code}",
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
            f"(every {RECURRENCE_MONTHS} months, {INSTANCE_DURATION_DAYS} days to answer). "
            "It reviews the guests group xtap-watch keeps for the client; denied guests are "
            "blocked at once and removed 30 days later, unanswered ones keep their access."
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
    """One alert per cause per day: six clients failing for one missing licence or
    permission are one card naming the first client, not six (issue 14.2)."""
    if failure.cause:
        digest = hashlib.sha256(failure.cause.encode()).hexdigest()[:16]
        return AlertRecord(
            dedup_key=f"access-review-failed:cause:{digest}:{now:%Y%m%d}",
            kind=AlertKind.ACCESS_REVIEW_FAILED,
            severity=Severity.MEDIUM,
            title="Guest access reviews cannot be created",
            summary=(
                f"{failure.summary} This cause is the vendor tenant's, not one client's: "
                "every client's review fails the same way until it is fixed."
            ),
            remediation_steps=(
                failure.remediation,
                "The weekly run ensures every client's review again; nothing else to do.",
            ),
            facts={"First client affected": client_name, "Job": job_id, "Cause": failure.cause},
            when=now,
            created_at=now,
            source="review",
        )
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
