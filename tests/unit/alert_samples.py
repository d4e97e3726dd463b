"""One realistic alert record per alert kind, for rendering tests (a test fixture).

The README preview and docs/images are rendered from alerts the demo really delivered
(`python -m devtools.delivered`), never from these records.

Tenant IDs, domains and UPNs follow Microsoft's documented Graph examples (Contoso
``6babcaad-…`` from findTenantInformationByDomainName, partner ``9c5d131d-…`` from the
crossTenantAccessPolicy partner example, ``bob@contoso.com`` from directoryAudits).
Finding codes are the posture engine's (``docs/findings/<CODE>.md``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain.messages import (
    AlertKind,
    AlertRecord,
    ClientRef,
    FindingRef,
    Link,
    SettingChange,
    Severity,
)
from shared.rendering.digest import collapse

SAMPLE_NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)

CONTOSO = ClientRef(
    name="Contoso, Ltd",
    tenant_id="6babcaad-604b-40ac-a9d7-9fd97c0b779f",
    domains=("contoso.com", "CONTOSO18839.onmicrosoft.com"),
    contacts=("it-admin@contoso.com",),
)
FABRIKAM = ClientRef(
    name="Fabrikam Inc",
    tenant_id="9c5d131d-b1c3-4fc4-9e3f-c6557947d551",
    domains=("fabrikam.com",),
)
WINGTIP = ClientRef(
    name="Wingtip Toys",
    tenant_id="123f4846-ba00-4fd7-ba43-dac1f8f63013",
    domains=("wingtiptoysonline.com",),
)

OUTBOUND_BLOCKED = FindingRef(
    code="CLIENT_DEFAULT_OUTBOUND_BLOCKED",
    severity=Severity.HIGH,
    message=(
        "Outbound B2B collaboration to OSTTRA is blocked: the default outbound setting "
        "blocks all users and there is no organizational setting for OSTTRA."
    ),
    remediation=(
        "Add OSTTRA (sso.osttra.com) under Organizational settings and allow outbound B2B "
        "collaboration for all users (or the groups that use OSTTRA) and all external "
        "applications."
    ),
)
AUTO_REDEEM_OFF = FindingRef(
    code="CLIENT_AUTO_REDEMPTION_NOT_TICKED",
    severity=Severity.LOW,
    message="Automatic redemption of OSTTRA invitations is not ticked (outbound trust).",
    remediation=(
        "In the OSTTRA organizational setting, Trust settings: tick 'Automatically redeem "
        "invitations with the tenant OSTTRA'."
    ),
)
DIRECT_CONNECT_OPEN = FindingRef(
    code="CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN",
    severity=Severity.MEDIUM,
    message="Outbound B2B direct connect to OSTTRA is allowed; OSTTRA does not use it.",
    remediation="Set B2B direct connect outbound for OSTTRA to Block access.",
)


def _at(minutes_ago: int) -> datetime:
    return SAMPLE_NOW - timedelta(minutes=minutes_ago)


def _sample_records() -> dict[AlertKind, AlertRecord]:
    drifted = AlertRecord(
        dedup_key=f"posture:{CONTOSO.tenant_id}:drifted:2026-11-23T09:25Z",
        kind=AlertKind.CLIENT_DRIFTED,
        severity=Severity.HIGH,
        title="Contoso, Ltd can no longer sign in to OSTTRA",
        summary=(
            "Contoso's outbound cross-tenant access now blocks B2B collaboration to "
            "OSTTRA: every Contoso user gets AADSTS500212 at sign-in."
        ),
        client=CONTOSO,
        changes=(
            SettingChange(
                setting="b2bCollaborationOutbound (effective)",
                before="allowed: AllUsers, AllApplications",
                after="blocked: AllUsers, AllApplications (from default)",
            ),
        ),
        when=_at(5),
        evidence={"AADSTS500212 sign-in failures (last 24 h)": 37, "Users affected": 12},
        findings=(OUTBOUND_BLOCKED, DIRECT_CONNECT_OPEN, AUTO_REDEEM_OFF),
        remediation_steps=(
            "Send Contoso's administrator the client instructions e-mail with the exact "
            "steps for their tenant.",
            "Tell OSTTRA support that Contoso users cannot sign in until the fix is made.",
            "When Contoso has changed the setting, the next sweep sends a 'recovered' card.",
        ),
        facts={"verdict": "BLOCKED", "previous_verdict": "ALLOWED"},
        created_at=_at(4),
        source="posture",
    )
    records = {
        AlertKind.CLIENT_DRIFTED: drifted,
        AlertKind.CLIENT_REMINDER: drifted.model_copy(
            update={
                "dedup_key": f"posture:{CONTOSO.tenant_id}:reminder:2026-11-23T09Z",
                "kind": AlertKind.CLIENT_REMINDER,
                "title": "Reminder: Contoso, Ltd still cannot sign in to OSTTRA",
                "summary": "Open for 26 hours (first seen 2026-11-22 07:25 UTC).",
                "changes": (),
                "facts": {"verdict": "BLOCKED", "open_since": "2026-11-22 07:25:00 UTC"},
            }
        ),
        AlertKind.CLIENT_RECOVERED: AlertRecord(
            dedup_key=f"posture:{CONTOSO.tenant_id}:recovered:2026-11-23T09:25Z",
            kind=AlertKind.CLIENT_RECOVERED,
            severity=Severity.INFO,
            title="Contoso, Ltd can sign in to OSTTRA again",
            summary="Contoso's outbound settings allow OSTTRA for all users and apps.",
            client=CONTOSO,
            changes=(
                SettingChange(
                    setting="b2bCollaborationOutbound (effective)",
                    before="blocked: AllUsers, AllApplications (from default)",
                    after="allowed: AllUsers, AllApplications (OSTTRA entry)",
                ),
            ),
            when=_at(5),
            facts={"verdict": "ALLOWED", "open_for": "26 h"},
            created_at=_at(4),
            source="posture",
        ),
        AlertKind.CLIENT_CONSENT_MISSING: AlertRecord(
            dedup_key=f"posture:{WINGTIP.tenant_id}:consent-missing:2026-11-23T09:25Z",
            kind=AlertKind.CLIENT_CONSENT_MISSING,
            severity=Severity.MEDIUM,
            title="Wingtip Toys' settings can no longer be read (consent removed)",
            summary="Graph answered 401 invalid_client for the read-only app in Wingtip "
            "Toys' tenant: its admin consent was removed.",
            client=WINGTIP,
            evidence={"AADSTS500212 sign-in failures (last 24 h)": 0},
            links=(
                Link(
                    title="Admin-consent link",
                    url="https://login.microsoftonline.com/123f4846-ba00-4fd7-ba43-"
                    "dac1f8f63013/adminconsent?client_id=3f1e2d4c-5b6a-4789-9abc-def012345678",
                ),
            ),
            facts={"verdict": "UNKNOWN", "last_read": "2026-11-22 09:25:00 UTC"},
            created_at=_at(4),
            source="posture",
        ),
        AlertKind.CLIENT_CONSENT_RESTORED: AlertRecord(
            dedup_key=f"posture:{WINGTIP.tenant_id}:consent-restored:2026-11-23T09:25Z",
            kind=AlertKind.CLIENT_CONSENT_RESTORED,
            severity=Severity.INFO,
            title="Wingtip Toys' settings can be read again",
            client=WINGTIP,
            facts={"verdict": "ALLOWED"},
            created_at=_at(4),
            source="posture",
        ),
        AlertKind.CLIENT_POSTURE_UNKNOWN: AlertRecord(
            dedup_key=f"client:{WINGTIP.tenant_id}:unknown3:unknown_prolonged:1",
            kind=AlertKind.CLIENT_POSTURE_UNKNOWN,
            severity=Severity.MEDIUM,
            title="Wingtip Toys: the posture toward OSTTRA has been unknown for 26 h",
            summary="xtap-watch cannot tell whether Wingtip Toys' users can reach OSTTRA: "
            "the client's policy could not be read. A drift would go unnoticed until this "
            "is fixed.",
            client=WINGTIP,
            findings=(
                FindingRef(
                    code="CLIENT_TENANT_UNREACHABLE",
                    severity=Severity.LOW,
                    message="Graph answered 503 ServiceUnavailable when reading the client's "
                    "policy (after 5 attempts).",
                    remediation="Nothing to change on the client's side yet: the next sweep "
                    "retries. If it persists, check the client's tenant ID in the registry "
                    "and the read-only app's sign-in logs.",
                ),
            ),
            facts={
                "Verdict": "UNKNOWN",
                "Unknown since": "2026-11-22 07:25:00 UTC",
                "Cause": "The client's policy could not be read",
            },
            when=_at(4),
            created_at=_at(4),
            source="posture",
        ),
        AlertKind.CLIENT_POSTURE_KNOWN: AlertRecord(
            dedup_key=f"client:{WINGTIP.tenant_id}:unknown3:posture_known:0",
            kind=AlertKind.CLIENT_POSTURE_KNOWN,
            severity=Severity.INFO,
            title="Wingtip Toys: the posture toward OSTTRA can be determined again",
            summary="Wingtip Toys' posture toward OSTTRA is known again: ALLOWED.",
            client=WINGTIP,
            facts={"Verdict": "ALLOWED", "Unknown since": "2026-11-22 07:25:00 UTC"},
            created_at=_at(4),
            source="posture",
        ),
        AlertKind.SIGNIN_EVIDENCE: AlertRecord(
            dedup_key=f"signin:{FABRIKAM.tenant_id}:500212:2026-11-23T09Z",
            kind=AlertKind.SIGNIN_EVIDENCE,
            severity=Severity.MEDIUM,
            title="Fabrikam Inc users are failing to sign in (AADSTS500212)",
            summary=(
                "Fabrikam has not consented to the read-only app, so its policy cannot be "
                "read; the failures below point to its outbound policy."
            ),
            client=FABRIKAM,
            evidence={
                "AADSTS500212 NotAllowedByOutboundPolicyTenant": 23,
                "AADSTS500213 NotAllowedByInboundPolicyTenant": 0,
                "AADSTS5000211 tenant restrictions v2": 2,
            },
            findings=(
                FindingRef(
                    code="SIGNIN_CLIENT_OUTBOUND_BLOCKED",
                    severity=Severity.HIGH,
                    message="23 sign-ins failed with AADSTS500212: Fabrikam's outbound policy "
                    "blocks OSTTRA.",
                    remediation="Ask Fabrikam's administrator to allow OSTTRA in their outbound "
                    "cross-tenant access settings.",
                ),
                FindingRef(
                    code="CLIENT_CONSENT_MISSING",
                    severity=Severity.MEDIUM,
                    message="The client has not granted the read-only consent.",
                    remediation="Send the client the admin-consent link.",
                ),
            ),
            facts={"window": "last 60 minutes", "threshold": "10 failures"},
            created_at=_at(3),
            source="posture",
        ),
        AlertKind.VENDOR_SETTING_CHANGED: AlertRecord(
            dedup_key="audit:Directory_9a2b4e1f-0c2d-4a53-8c27-2d6b8f1a9e01",
            kind=AlertKind.VENDOR_SETTING_CHANGED,
            severity=Severity.HIGH,
            title="OSTTRA inbound B2B collaboration for Wingtip Toys was blocked",
            summary="Update a partner cross-tenant access setting",
            client=WINGTIP,
            changes=(
                SettingChange(
                    setting="b2bCollaborationInbound",
                    before='{"usersAndGroups":{"accessType":1,"targets":[{"target":"AllUsers"}]}}',
                    after='{"usersAndGroups":{"accessType":2,"targets":[{"target":"AllUsers"}]}}',
                ),
                SettingChange(
                    setting="inboundTrust",
                    before='{"isMfaAccepted":true}',
                    after=None,
                ),
            ),
            who="bob@contoso.com",
            when=_at(12),
            findings=(
                FindingRef(
                    code="VENDOR_INBOUND_BLOCKS_CLIENT",
                    severity=Severity.HIGH,
                    message="Wingtip Toys users are blocked by OSTTRA's inbound policy "
                    "(AADSTS500213).",
                    remediation="Restore inbound B2B collaboration for Wingtip Toys.",
                ),
            ),
            facts={
                "activity": "Update a partner cross-tenant access setting",
                "correlation_id": "2b1d4c6e-2f1a-4d5b-9e8c-7a6b5c4d3e2f",
            },
            created_at=_at(10),
            source="audit",
        ),
        AlertKind.VENDOR_POSTURE: AlertRecord(
            dedup_key=f"vendor:{FABRIKAM.tenant_id}:mfa-apps-missing",
            kind=AlertKind.VENDOR_POSTURE,
            severity=Severity.MEDIUM,
            title="OSTTRA inbound app allowlist for Fabrikam Inc misses the MFA registration apps",
            client=FABRIKAM,
            findings=(
                FindingRef(
                    code="VENDOR_INBOUND_APPS_MISSING_MFA_APPS",
                    severity=Severity.MEDIUM,
                    message="The inbound applications allowlist does not contain My Sign-ins "
                    "and My Profile; new guests loop on MFA registration.",
                    remediation="Add My Apps, Microsoft App Access Panel, My Sign-ins and My "
                    "Profile to the inbound applications allowed for Fabrikam.",
                ),
                FindingRef(
                    code="VENDOR_AUTO_REDEMPTION_NOT_TICKED",
                    severity=Severity.LOW,
                    message="Inbound automatic redemption is not ticked for Fabrikam.",
                    remediation="Tick 'Automatically redeem invitations' in inbound trust.",
                ),
            ),
            created_at=_at(2),
            source="posture",
        ),
        AlertKind.REINVITE_DONE: AlertRecord(
            dedup_key="reinvite:job-20261123-0007:done",
            kind=AlertKind.REINVITE_DONE,
            severity=Severity.INFO,
            title="Re-invite done for alex.wilber@contoso.com",
            client=CONTOSO,
            who="support.agent@osttra.com",
            when=_at(1),
            links=(
                Link(
                    title="Re-invite status",
                    url="https://xtap-watch.azurewebsites.net/api/v1/reinvites/job-20261123-0007",
                ),
            ),
            facts={
                "job_id": "job-20261123-0007",
                "user_id": "7d2a8c3e-5b1f-4e6a-9c0d-3f2e1a4b5c6d",
                "reason": "User changed e-mail domain after merger",
            },
            created_at=_at(1),
            source="reinvite",
        ),
        AlertKind.REINVITE_FAILED: AlertRecord(
            dedup_key="reinvite:job-20261123-0008:failed",
            kind=AlertKind.REINVITE_FAILED,
            severity=Severity.MEDIUM,
            title="Re-invite failed for megan.bowen@fabrikam.com",
            summary="Graph answered 403 Authorization_RequestDenied: the guest holds a "
            "directory role, which app-only calls cannot reset.",
            client=FABRIKAM,
            who="support.agent@osttra.com",
            when=_at(1),
            facts={
                "job_id": "job-20261123-0008",
                "user_id": "4c1e7b2a-9d3f-4a5e-8b6c-1d2e3f4a5b6c",
                "attempts": "1 (not retried: permanent error)",
            },
            created_at=_at(1),
            source="reinvite",
        ),
        AlertKind.ACCESS_REVIEW_CREATED: AlertRecord(
            dedup_key=f"review:{CONTOSO.tenant_id}:created",
            kind=AlertKind.ACCESS_REVIEW_CREATED,
            severity=Severity.INFO,
            title="Quarterly access review of Contoso, Ltd guests created",
            client=CONTOSO,
            who="admin@osttra.com",
            when=_at(30),
            facts={
                "review_name": "xtap-watch: Contoso, Ltd guests",
                "definition_id": "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d",
                "recurrence": "every 3 months",
            },
            created_at=_at(30),
            source="review",
        ),
        AlertKind.ACCESS_REVIEW_FAILED: AlertRecord(
            dedup_key=f"review:{WINGTIP.tenant_id}:failed",
            kind=AlertKind.ACCESS_REVIEW_FAILED,
            severity=Severity.MEDIUM,
            title="Access review for Wingtip Toys guests could not be created",
            summary="Graph answered 403: reviews of inactive users need a Microsoft Entra "
            "ID Governance licence.",
            client=WINGTIP,
            who="admin@osttra.com",
            when=_at(30),
            created_at=_at(30),
            source="review",
        ),
        AlertKind.PENDING_GUESTS: AlertRecord(
            dedup_key=f"hygiene:{FABRIKAM.tenant_id}:pending:2026-W48",
            kind=AlertKind.PENDING_GUESTS,
            severity=Severity.LOW,
            title="4 Fabrikam Inc guests have not accepted their invitation",
            client=FABRIKAM,
            evidence={
                "PendingAcceptance for more than 14 days": 4,
                "PendingAcceptance for more than 90 days": 1,
            },
            remediation_steps=(
                "Ask Fabrikam whether these users still need OSTTRA.",
                "Re-invite the ones who do: POST /api/v1/reinvites with their user ID.",
            ),
            facts={"oldest": "megan.bowen@fabrikam.com (invited 2026-08-02)"},
            created_at=_at(60),
            source="hygiene",
        ),
        AlertKind.DELIVERY_FAILING: AlertRecord(
            dedup_key="delivery:teams:primary:failing:2026-11-23T09Z",
            kind=AlertKind.DELIVERY_FAILING,
            severity=Severity.HIGH,
            title="Alerts are not reaching the Teams channel",
            summary="The Workflows webhook answered 404 for the last 5 deliveries.",
            facts={
                "channel": "Teams (primary webhook)",
                "last_status": "404 Not Found",
                "undelivered_alerts": "5",
                "first_failure": "2026-11-23 08:12:44 UTC",
            },
            created_at=_at(1),
            source="delivery",
        ),
        AlertKind.POISON_MESSAGE: AlertRecord(
            dedup_key="poison:xtap-check-client:3f1c9a52-7e1b-4bd4-a3c0-0d9d0f4b2e11",
            kind=AlertKind.POISON_MESSAGE,
            severity=Severity.HIGH,
            title="A check-client message was moved to the poison queue",
            summary="Message does not parse: tenant_id is not a GUID.",
            facts={
                "queue": "xtap-check-client-poison",
                "message_id": "3f1c9a52-7e1b-4bd4-a3c0-0d9d0f4b2e11",
                "dequeue_count": "5",
                "message_excerpt": '{"type":"check_client","tenant_id":"contoso.com",…}',
            },
            created_at=_at(1),
            source="poison",
        ),
        AlertKind.SOURCE_UNAVAILABLE: AlertRecord(
            dedup_key="source:signin_evidence:non_premium_tenant:20261123T090000",
            kind=AlertKind.SOURCE_UNAVAILABLE,
            severity=Severity.MEDIUM,
            title="Sign-in evidence unavailable: Entra ID P1/P2 licence missing",
            summary="Graph refused the vendor tenant's sign-in logs: the tenant has no "
            "Microsoft Entra ID P1 or P2 licence.",
            facts={"Source": "Sign-in evidence", "Cause": "non_premium_tenant",
                   "Error": "403 Authentication_RequestFromNonPremiumTenantOrB2CTenant"},
            remediation_steps=("License the vendor tenant with Entra ID P1, or set "
                               "XTAP_SIGNIN_SOURCE to log_analytics or none.",),
            created_at=_at(1),
            source="posture",
        ),
    }
    many = [
        AlertRecord(
            dedup_key=f"posture:{client.tenant_id}:drifted:{n}",
            kind=AlertKind.CLIENT_DRIFTED,
            severity=severity,
            title=f"{client.name} can no longer sign in to OSTTRA",
            client=client,
            created_at=_at(n),
            source="posture",
        )
        for n, (client, severity) in enumerate(
            [(CONTOSO, Severity.HIGH), (FABRIKAM, Severity.HIGH), (WINGTIP, Severity.MEDIUM)]
            + [
                (
                    ClientRef(
                        name=f"Client {i:02d}",
                        tenant_id=f"00000000-0000-4000-8000-0000000000{i:02d}",
                    ),
                    Severity.MEDIUM if i % 3 else Severity.LOW,
                )
                for i in range(1, 6)
            ]
        )
    ]
    (digest,) = collapse(many, threshold=5, now=SAMPLE_NOW)
    records[AlertKind.DIGEST] = digest
    records.update(_self_watch_records())
    return records


def _self_watch_records() -> dict[AlertKind, AlertRecord]:
    """Heartbeat and watchdog samples, built by the code that builds the real ones."""
    from shared.domain.heartbeat import AckLine, HeartbeatFacts, heartbeat_alert
    from shared.domain.watchdog import (
        WatchEvent,
        WatchTransition,
        audit_scan_problem,
        watchdog_alert,
    )

    heartbeat = heartbeat_alert(
        HeartbeatFacts(
            clients=5,
            verdicts={"BLOCKED": 1, "LIMITED": 1, "UNKNOWN": 1, "ALLOWED": 2},
            drifted_now=[CONTOSO.name],
            opened=[CONTOSO.name],
            closed=[WINGTIP.name],
            acknowledged=[
                AckLine(FABRIKAM.name, "alice@osttra.com", "client fixing on Friday", _at(-2880))
            ],
            last_audit_scan=_at(1),
            last_complete_sweep=_at(30),
            deliveries_failed=0,
        ),
        SAMPLE_NOW,
        SAMPLE_NOW,
        "OSTTRA",
        operations_url="https://github.com/xtap-watch/xtap-watch/blob/main/docs/operations.md",
    )
    stalled = audit_scan_problem(_at(4), [_at(3), _at(2), _at(1)])
    assert stalled is not None
    watchdog = watchdog_alert(
        WatchEvent(WatchTransition.DEGRADED, stalled.key, stalled, None), SAMPLE_NOW
    )
    return {AlertKind.HEARTBEAT: heartbeat, AlertKind.WATCHDOG: watchdog}


SAMPLE_ALERTS: dict[AlertKind, AlertRecord] = _sample_records()


VENDOR_TENANT = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
_PORTAL_FIX = (
    "In the Microsoft Entra admin center (https://entra.microsoft.com) > Entra ID > External "
    "Identities > Cross-tenant access settings > Organizational settings: if OSTTRA is not "
    "listed, select Add organization, enter sso.osttra.com (or the tenant ID "
    f"{VENDOR_TENANT}) and select Add; then select the link in the Outbound access column "
    "on the row for OSTTRA. On the B2B collaboration tab select Customize settings; under "
    "Users and groups choose Allow access and Applies to: All users (or select the groups "
    "that must reach the vendor); under External applications choose Allow access and All "
    "external applications; Save."
)
_GRAPH_FIX = (
    f"Graph: PATCH /policies/crossTenantAccessPolicy/partners/{VENDOR_TENANT} with "
    "b2bCollaborationOutbound usersAndGroups and applications set to accessType 'allowed' "
    "(targets AllUsers / AllApplications); create the entry first with POST "
    f'/policies/crossTenantAccessPolicy/partners {{"tenantId": "{VENDOR_TENANT}"}} if it '
    "does not exist."
)
# The shape the posture producer really sends (captured from the demo): a summary glued
# from the effective-policy explanation, the finding's fix repeated as the step, and
# bookkeeping facts. The card must still be short.
PRODUCER_DRIFT = AlertRecord(
    dedup_key="client:1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d:ep1:drifted:0",
    kind=AlertKind.CLIENT_DRIFTED,
    severity=Severity.HIGH,
    title="Contoso Markets: users can no longer reach OSTTRA",
    summary=(
        f"Organizational entry for OSTTRA ({VENDOR_TENANT}): present; null fields inherit "
        "from the default Outbound B2B collaboration, users and groups: blocked [AllUsers] "
        "(set on the vendor's organizational entry) Outbound B2B collaboration, external "
        "applications: blocked [AllApplications] (set on the vendor's organizational entry) "
        "Outbound B2B direct connect, users and groups: blocked [AllUsers] (inherited from "
        "the default settings) Automatic redemption (outbound): ticked on the entry"
    ),
    client=ClientRef(
        name="Contoso Markets",
        tenant_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        domains=("contoso-markets.com", "contosomarkets.onmicrosoft.com"),
        contacts=("it-admin@contoso-markets.com",),
    ),
    changes=(
        SettingChange(setting="Outbound B2B collaboration: users and groups",
                      before="allowed: all users (inherited from the default)",
                      after="blocked: all users (set on the OSTTRA entry)"),
        SettingChange(setting="Outbound B2B collaboration: external applications",
                      before="allowed: all external applications (inherited from the default)",
                      after="blocked: all external applications (set on the OSTTRA entry)"),
    ),
    when=SAMPLE_NOW,
    # Since the calm merge the producer also says when it saw the change (the previous
    # check, a sweep earlier) and links how to acknowledge the drift.
    changed_at=SAMPLE_NOW - timedelta(minutes=15),
    detection_latency_seconds=900.0,
    detection_latency_basis="previous_check",
    findings=(
        FindingRef(
            code="CLIENT_OUTBOUND_BLOCKED",
            severity=Severity.HIGH,
            message="The client's organizational entry for OSTTRA blocks outbound B2B "
            "collaboration: no user can sign in to the vendor's apps (they fail with "
            "AADSTS500212).",
            remediation=f"{_PORTAL_FIX} {_GRAPH_FIX}",
        ),
    ),
    remediation_steps=(f"{_PORTAL_FIX} {_GRAPH_FIX}",),
    links=(
        Link(title="Cross-tenant access settings",
             url="https://entra.microsoft.com/#view/Microsoft_AAD_IAM/"
             "CompanyRelationshipsMenuBlade/~/CrossTenantAccessSettings"),
        Link(title="Runbook: The client's entry for the vendor blocks outbound B2B "
             "collaboration",
             url="https://github.com/xtap-watch/xtap-watch/blob/main/docs/findings/"
             "CLIENT_OUTBOUND_BLOCKED.md"),
        Link(title="Acknowledge",
             url="https://xtap-watch.azurewebsites.net/api/v1/runbooks#acknowledge-a-drift"),
    ),
    facts={"Verdict": "BLOCKED", "Client tenant": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
           "Episode": "1", "Previous verdict": "ALLOWED"},
    batch_id="20261201T195959-51102e05",
    created_at=SAMPLE_NOW,
    source="posture",
)
PORTAL_FIX = _PORTAL_FIX
GRAPH_FIX = _GRAPH_FIX
