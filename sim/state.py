"""In-memory tenants of the Graph simulator (a TEST DOUBLE, not Microsoft Entra).

Holds every simulated tenant (policies, users, sign-ins, audit events, access reviews,
invitations, consents), the app registrations and managed identities that may ask for
tokens, and what the simulator received (mail, webhook posts). Loaded from a scenario
dict (format: ``sim/README.md``). Changing a policy through :meth:`SimState.set_partner_policy`
and friends also appends the directoryAudit event Entra would write.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sim.clock import iso7, iso_seconds, resolve_relative_fields, resolve_time, utcnow

_NS = uuid.UUID("6f1c2b7e-51a4-4a8e-9c0d-3d7f2e8b9a10")

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

# The service default of GET /policies/crossTenantAccessPolicy/default (Microsoft's example).
SERVICE_DEFAULT_POLICY: dict[str, Any] = {
    "isServiceDefault": True,
    "inboundTrust": {
        "isMfaAccepted": False,
        "isCompliantDeviceAccepted": False,
        "isHybridAzureADJoinedDeviceAccepted": False,
    },
    "automaticUserConsentSettings": {"inboundAllowed": False, "outboundAllowed": False},
    "b2bCollaborationOutbound": {
        "usersAndGroups": {
            "accessType": "allowed",
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": "allowed",
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        },
    },
    "b2bCollaborationInbound": {
        "usersAndGroups": {
            "accessType": "allowed",
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": "allowed",
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        },
    },
    "b2bDirectConnectOutbound": {
        "usersAndGroups": {
            "accessType": "blocked",
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": "blocked",
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        },
    },
    "b2bDirectConnectInbound": {
        "usersAndGroups": {
            "accessType": "blocked",
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": "blocked",
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        },
    },
}

PARTNER_PROPERTIES = (
    "inboundTrust",
    "automaticUserConsentSettings",
    "b2bCollaborationOutbound",
    "b2bCollaborationInbound",
    "b2bDirectConnectOutbound",
    "b2bDirectConnectInbound",
    "tenantRestrictions",
)
# Properties whose changes are reported as modifiedProperties, in Entra's order.
AUDITED_PROPERTIES = (
    "b2bCollaborationOutbound",
    "b2bCollaborationInbound",
    "b2bDirectConnectOutbound",
    "b2bDirectConnectInbound",
    "inboundTrust",
    "automaticUserConsentSettings",
    "tenantRestrictions",
)

DEFAULT_AUTHORIZATION_POLICY: dict[str, Any] = {
    "id": "authorizationPolicy",
    "allowInvitesFrom": "everyone",
    "allowedToSignUpEmailBasedSubscriptions": True,
    "allowedToUseSSPR": True,
    "allowEmailVerifiedUsersToJoinOrganization": True,
    "allowUserConsentForRiskyApps": False,
    "blockMsolPowerShell": None,
    "displayName": "Authorization Policy",
    "description": "Used to manage authorization related settings across the company.",
    "guestUserRoleId": "10dae51f-b6af-4016-8d66-8c2a99b929b3",
    "defaultUserRolePermissions": {
        "allowedToCreateApps": True,
        "allowedToCreateSecurityGroups": True,
        "allowedToReadOtherUsers": True,
        "permissionGrantPoliciesAssigned": [
            "ManagePermissionGrantsForSelf.microsoft-user-default-legacy"
        ],
    },
}

# Sign-in failure reasons as Entra writes them for the codes the product cares about.
SIGNIN_FAILURE_REASONS: dict[int, str] = {
    500212: (
        "NotAllowedByOutboundPolicyTenant - The user's administrator has set an outbound"
        " access policy that doesn't allow access to the resource tenant."
    ),
    500213: (
        "NotAllowedByInboundPolicyTenant - The resource tenant's cross-tenant access policy"
        " doesn't allow this user to access this tenant."
    ),
    5000211: (
        "A tenant restrictions policy added to this request by a device or network"
        " administrator does not allow access to the resource tenant."
    ),
    50105: "The signed in user is not assigned to a role for the application.",
    50126: "Error validating credentials due to invalid username or password.",
}

CONSENT_STATES = ("granted", "revoked", "none")


def audit_event_id(correlation_id: str, serial: int) -> str:
    """Entra's directoryAudit IDs look like ``Directory_<correlationId>_<5 chars>_<number>``."""
    return f"Directory_{correlation_id}_{uuid.uuid4().hex[:5].upper()}_{serial}"


def stable_id(*parts: object) -> str:
    """A deterministic GUID (scenario generation must be reproducible)."""
    return str(uuid.uuid5(_NS, "|".join(str(p) for p in parts)))


class ScenarioError(ValueError):
    """A scenario or control-API input is invalid (→ HTTP 400 on the control API)."""


@dataclass
class Application:
    """An app registration that can ask the token endpoint for app-only tokens."""

    app_id: str
    display_name: str
    home_tenant_id: str
    secrets: list[str]
    federated_subjects: list[str]
    roles: list[str]
    sign_in_audience: str = "AzureADMyOrg"


@dataclass
class ManagedIdentity:
    """A (user-assigned) managed identity served by the App Service style MSI endpoint."""

    client_id: str
    principal_id: str
    tenant_id: str
    display_name: str
    roles: list[str]
    identity_header: str


@dataclass
class Consent:
    state: str  # granted | revoked | none
    roles: list[str] | None = None  # None → the app's requested roles


@dataclass
class Tenant:
    id: str
    display_name: str
    default_domain: str
    domains: list[str]
    federation_brand_name: str | None
    default_policy: dict[str, Any]
    partners: dict[str, dict[str, Any]]
    authorization_policy: dict[str, Any]
    policy_object_id: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    directory_roles: dict[str, list[str]] = field(default_factory=dict)
    sign_ins: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    access_reviews: list[dict[str, Any]] = field(default_factory=list)
    invitations: list[dict[str, Any]] = field(default_factory=list)
    consents: dict[str, Consent] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    workspace_id: str | None = None
    admin_upn: str = ""
    # Directory objects and settings the guest work relies on (sim/directory.py):
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_members: dict[str, list[str]] = field(default_factory=dict)
    # Directory roles held by service principals, by app ID (managed identity: client ID).
    service_principal_roles: dict[str, list[str]] = field(default_factory=dict)
    # GET /beta/policies/b2bManagementPolicies items (None: the tenant never set one).
    b2b_management_policies: list[dict[str, Any]] | None = None
    allowed_cloud_endpoints: list[str] = field(default_factory=list)
    cloud_instance_name: str = "microsoftonline.com"
    # When Log Analytics received each sign-in / audit row (by record id): its TimeGenerated.
    log_ingested: dict[str, datetime] = field(default_factory=dict)

    def find_user(self, key: str) -> dict[str, Any] | None:
        """By object ID or userPrincipalName (case-insensitive), as Graph's /users/{id}."""
        user = self.users.get(key.lower())
        if user is not None:
            return user
        lowered = key.lower()
        for candidate in self.users.values():
            if str(candidate.get("userPrincipalName", "")).lower() == lowered:
                return candidate
        return None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "defaultDomainName": self.default_domain,
            "domains": list(self.domains),
            "partners": sorted(self.partners),
            "users": len(self.users),
            "signIns": len(self.sign_ins),
            "directoryAudits": len(self.audits),
            "accessReviewDefinitions": len(self.access_reviews),
            "consents": {app: c.state for app, c in self.consents.items()},
            "flags": dict(self.flags),
            "logAnalyticsWorkspaceId": self.workspace_id,
        }


DEFAULT_FLAGS: dict[str, Any] = {
    # False → POST accessReviews/definitions fails with the licence error Entra returns.
    "accessReviewsLicensed": True,
    # False → reviews of inactive users (accessReviewInactiveUsersQueryScope) fail.
    "idGovernanceLicensed": True,
    # False → GET /auditLogs/signIns answers 403
    # Authentication_RequestFromNonPremiumTenantOrB2CTenant (sign-in logs through Graph
    # need Entra ID P1/P2; audit logs do not).
    "premiumLicensed": True,
    # Tables the tenant's Log Analytics workspace holds; a query of any other table fails
    # with SEM0100 (a diagnostic setting can take days to create its table).
    "logAnalyticsTables": ["SigninLogs", "AuditLogs"],
    # More result rows than this → a partial answer (rows up to the limit + PartialError).
    "logAnalyticsRowLimit": 500_000,
    # Seconds between a row reaching Log Analytics and it being queryable/its TimeGenerated.
    "logIngestionDelaySeconds": 0,
}


class SimState:
    """Everything the simulator knows. Not thread-safe: used from one event loop."""

    def __init__(self, seed: int = 1) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.domain_index: dict[str, str] = {}
        self.applications: dict[str, Application] = {}
        self.managed_identities: dict[str, ManagedIdentity] = {}
        self.mailbox: list[dict[str, Any]] = []
        self.webhook_messages: dict[str, list[dict[str, Any]]] = {}
        self.token_lifetime_seconds = 3599
        self.seed = seed
        self.rng = random.Random(seed)
        self.description = ""

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_scenario(cls, scenario: dict[str, Any]) -> SimState:
        if not isinstance(scenario, dict):
            raise ScenarioError("a scenario is a JSON object")
        state = cls(seed=int(scenario.get("seed", 1)))
        state.description = str(scenario.get("description", ""))
        state.token_lifetime_seconds = int(scenario.get("tokenLifetimeSeconds", 3599))
        now = utcnow()
        for raw_app in scenario.get("applications", []):
            state.add_application(raw_app)
        for raw_identity in scenario.get("managedIdentities", []):
            state.add_managed_identity(raw_identity)
        for raw_tenant in scenario.get("tenants", []):
            state.add_tenant(raw_tenant, now=now)
        # Apps registered in a tenant are consented there unless said otherwise.
        for app in state.applications.values():
            home = state.tenants.get(app.home_tenant_id)
            if home is not None and app.app_id not in home.consents:
                home.consents[app.app_id] = Consent("granted")
        return state

    def add_application(self, raw: dict[str, Any]) -> Application:
        try:
            app = Application(
                app_id=str(raw["appId"]).lower(),
                display_name=str(raw.get("displayName", raw["appId"])),
                home_tenant_id=str(raw["homeTenantId"]).lower(),
                secrets=[str(s) for s in raw.get("secrets", [])],
                federated_subjects=[str(s).lower() for s in raw.get("federatedSubjects", [])],
                roles=[str(r) for r in raw.get("roles", [])],
                sign_in_audience=str(raw.get("signInAudience", "AzureADMyOrg")),
            )
        except KeyError as exc:
            raise ScenarioError(f"application needs {exc.args[0]!r}") from exc
        self.applications[app.app_id] = app
        return app

    def add_managed_identity(self, raw: dict[str, Any]) -> ManagedIdentity:
        try:
            identity = ManagedIdentity(
                client_id=str(raw["clientId"]).lower(),
                principal_id=str(raw["principalId"]).lower(),
                tenant_id=str(raw["tenantId"]).lower(),
                display_name=str(raw.get("displayName", "managed identity")),
                roles=[str(r) for r in raw.get("roles", [])],
                identity_header=str(raw.get("identityHeader", "sim-identity-header")),
            )
        except KeyError as exc:
            raise ScenarioError(f"managed identity needs {exc.args[0]!r}") from exc
        self.managed_identities[identity.client_id] = identity
        return identity

    def add_tenant(self, raw: dict[str, Any], now: datetime | None = None) -> Tenant:
        now = now or utcnow()
        try:
            tenant_id = str(raw["id"]).lower()
        except KeyError as exc:
            raise ScenarioError("tenant needs 'id'") from exc
        uuid.UUID(tenant_id)
        domains = [str(d).lower() for d in raw.get("domains", [])]
        default_domain = str(
            raw.get("defaultDomainName")
            or (domains[0] if domains else f"{tenant_id[:8]}.onmicrosoft.com")
        ).lower()
        if default_domain not in domains:
            domains.append(default_domain)
        policy = raw.get("crossTenantAccessPolicy", {}) or {}
        tenant = Tenant(
            id=tenant_id,
            display_name=str(raw.get("displayName", default_domain)),
            default_domain=default_domain,
            domains=domains,
            federation_brand_name=raw.get("federationBrandName"),
            default_policy=normalise_default_policy(policy.get("default")),
            partners={},
            authorization_policy={
                **copy.deepcopy(DEFAULT_AUTHORIZATION_POLICY),
                **raw.get("authorizationPolicy", {}),
            },
            policy_object_id=stable_id("policy", tenant_id),
            flags={**DEFAULT_FLAGS, **raw.get("flags", {})},
            workspace_id=(
                str(raw["logAnalyticsWorkspaceId"]).lower()
                if raw.get("logAnalyticsWorkspaceId")
                else None
            ),
            admin_upn=str(raw.get("adminUserPrincipalName", f"admin@{default_domain}")),
        )
        for partner in policy.get("partners", []) or []:
            normalised = normalise_partner_policy(partner)
            tenant.partners[normalised["tenantId"]] = normalised
        self.tenants[tenant_id] = tenant
        for domain in domains:
            self.domain_index[domain] = tenant_id
        for app_id, consent in (raw.get("consents") or {}).items():
            self.set_consent(tenant_id, app_id, consent)
        self.add_users(tenant_id, raw.get("users", []), now=now)
        self.add_sign_ins(tenant_id, raw.get("signIns", []), now=now, historical=True)
        self.add_audit_events(tenant_id, raw.get("directoryAudits", []), now=now, historical=True)
        from sim.directory import load_directory

        load_directory(tenant, raw, now)
        for definition in raw.get("accessReviewDefinitions", []):
            tenant.access_reviews.append(
                normalise_access_review(copy.deepcopy(definition), tenant, created_by=None, now=now)
            )
        return tenant

    # ------------------------------------------------------------------ lookups
    def tenant(self, tenant_id: str) -> Tenant:
        tenant = self.tenants.get(tenant_id.lower())
        if tenant is None:
            raise ScenarioError(f"unknown tenant {tenant_id!r}")
        return tenant

    def resolve_tenant(self, key: str) -> Tenant | None:
        """Token endpoints accept a tenant ID or one of its domains."""
        lowered = key.lower()
        if lowered in self.tenants:
            return self.tenants[lowered]
        tenant_id = self.domain_index.get(lowered)
        return self.tenants.get(tenant_id) if tenant_id else None

    def consent(self, tenant_id: str, app_id: str) -> Consent:
        tenant = self.tenants.get(tenant_id.lower())
        if tenant is None:
            return Consent("none")
        return tenant.consents.get(app_id.lower(), Consent("none"))

    def granted_roles(self, tenant_id: str, app_id: str) -> list[str]:
        """Roles an app or managed identity holds in a tenant right now."""
        identity = self.managed_identities.get(app_id.lower())
        if identity is not None and identity.tenant_id == tenant_id.lower():
            return list(identity.roles)
        consent = self.consent(tenant_id, app_id)
        if consent.state != "granted":
            return []
        if consent.roles is not None:
            return list(consent.roles)
        app = self.applications.get(app_id.lower())
        return list(app.roles) if app else []

    def set_consent(self, tenant_id: str, app_id: str, consent: Any) -> Consent:
        tenant = self.tenant(tenant_id)
        if isinstance(consent, str):
            state, roles = consent, None
        elif isinstance(consent, dict):
            state, roles = str(consent.get("state", "granted")), consent.get("roles")
        else:
            raise ScenarioError("consent is 'granted' | 'revoked' | 'none' or {state, roles}")
        if state not in CONSENT_STATES:
            raise ScenarioError(f"consent state must be one of {CONSENT_STATES}, not {state!r}")
        value = Consent(state, [str(r) for r in roles] if roles is not None else None)
        tenant.consents[app_id.lower()] = value
        return value

    # ------------------------------------------------------------------ records
    def add_users(
        self, tenant_id: str, users: Iterable[dict[str, Any]], now: datetime | None = None
    ) -> list[dict[str, Any]]:
        tenant = self.tenant(tenant_id)
        now = now or utcnow()
        added = []
        for raw in users:
            user = normalise_user(copy.deepcopy(raw), tenant, now)
            roles = user.pop("directoryRoles", None) or []
            tenant.users[user["id"]] = user
            if roles:
                tenant.directory_roles[user["id"]] = [str(r) for r in roles]
            added.append(user)
        return added

    def add_sign_ins(
        self,
        tenant_id: str,
        sign_ins: Iterable[dict[str, Any]],
        now: datetime | None = None,
        *,
        historical: bool = False,
    ) -> list[dict[str, Any]]:
        tenant = self.tenant(tenant_id)
        now = now or utcnow()
        added = [normalise_sign_in(copy.deepcopy(raw), tenant, now, self) for raw in sign_ins]
        tenant.sign_ins.extend(added)
        for record in added:
            record_ingestion(tenant, record, "createdDateTime", now, historical)
        return added

    def add_audit_events(
        self,
        tenant_id: str,
        events: Iterable[dict[str, Any]],
        now: datetime | None = None,
        *,
        historical: bool = False,
    ) -> list[dict[str, Any]]:
        tenant = self.tenant(tenant_id)
        now = now or utcnow()
        added = [normalise_audit(copy.deepcopy(raw), now) for raw in events]
        tenant.audits.extend(added)
        for event in added:
            record_ingestion(tenant, event, "activityDateTime", now, historical)
        return added

    # ------------------------------------------------------------------ policy changes
    def set_partner_policy(
        self,
        tenant_id: str,
        partner_tenant_id: str,
        policy: dict[str, Any],
        *,
        actor: Any = None,
        value_style: str = "camel",
        at: Any = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        """Create or update (PATCH-like: top-level properties) a partner entry + audit event."""
        tenant = self.tenant(tenant_id)
        partner_id = partner_tenant_id.lower()
        uuid.UUID(partner_id)
        before = tenant.partners.get(partner_id)
        if before is None or replace:
            merged = {**(policy or {}), "tenantId": partner_id}
        else:
            merged = {**copy.deepcopy(before), **(policy or {}), "tenantId": partner_id}
        after = normalise_partner_policy(merged)
        tenant.partners[partner_id] = after
        if before is None:
            activity, operation = "Add a partner to cross-tenant access setting", "Add"
            modified = [_tenant_id_property(None, partner_id)]
        else:
            activity, operation = "Update a partner cross-tenant access setting", "Update"
            modified = [_tenant_id_property(partner_id, partner_id)]
        modified += _diff_properties(before, after, value_style)
        return self._append_policy_event(
            tenant,
            activity,
            "CrossTenantAccessSettings",
            operation,
            partner_id,
            modified,
            actor,
            at,
        )

    def delete_partner_policy(
        self,
        tenant_id: str,
        partner_tenant_id: str,
        *,
        actor: Any = None,
        value_style: str = "camel",
        at: Any = None,
    ) -> dict[str, Any]:
        tenant = self.tenant(tenant_id)
        partner_id = partner_tenant_id.lower()
        before = tenant.partners.pop(partner_id, None)
        if before is None:
            raise ScenarioError(f"tenant {tenant.id} has no partner entry for {partner_id}")
        modified = [_tenant_id_property(partner_id, None)]
        modified += _diff_properties(before, None, value_style)
        return self._append_policy_event(
            tenant,
            "Delete partner specific cross-tenant access setting",
            "CrossTenantAccessSettings",
            "Delete",
            partner_id,
            modified,
            actor,
            at,
        )

    def set_default_policy(
        self,
        tenant_id: str,
        policy: dict[str, Any],
        *,
        actor: Any = None,
        value_style: str = "camel",
        at: Any = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        tenant = self.tenant(tenant_id)
        before = tenant.default_policy
        base = {} if replace else {k: v for k, v in before.items() if k != "isServiceDefault"}
        after = normalise_default_policy({**copy.deepcopy(base), **(policy or {})})
        after["isServiceDefault"] = False
        tenant.default_policy = after
        modified = _diff_properties(before, after, value_style)
        return self._append_policy_event(
            tenant,
            "Update the company default cross-tenant access setting",
            "CrossTenantIdentitySyncSettings",
            "Update",
            None,
            modified,
            actor,
            at,
        )

    def _append_policy_event(
        self,
        tenant: Tenant,
        activity: str,
        category: str,
        operation_type: str,
        partner_id: str | None,
        modified: list[dict[str, Any]],
        actor: Any,
        at: Any,
    ) -> dict[str, Any]:
        now = utcnow()
        moment = resolve_time(at, now) if at is not None else now
        correlation_id = str(uuid.uuid4())
        event = {
            "id": audit_event_id(correlation_id, self.rng.randrange(10**8, 10**9)),
            "category": category,
            "correlationId": correlation_id,
            "result": "success",
            "resultReason": "",
            "activityDisplayName": activity,
            "activityDateTime": iso7(moment),
            "loggedByService": "Core Directory",
            "operationType": operation_type,
            "initiatedBy": self.initiated_by(tenant, actor),
            "userAgent": None,
            "targetResources": [
                {
                    "id": tenant.policy_object_id,
                    "displayName": (
                        f"CrossTenantAccessPolicy for {partner_id}"
                        if partner_id
                        else "CrossTenantAccessPolicy default configuration"
                    ),
                    "type": "Policy",
                    "userPrincipalName": None,
                    "groupType": None,
                    "modifiedProperties": modified,
                }
            ],
            "additionalDetails": [],
        }
        tenant.audits.append(event)
        record_ingestion(tenant, event, "activityDateTime", now, historical=False)
        return event

    def initiated_by(self, tenant: Tenant, actor: Any) -> dict[str, Any]:
        """``None`` → the tenant admin; a UPN string → that user; a dict → user or app."""
        if actor is None:
            actor = tenant.admin_upn
        if isinstance(actor, str):
            user = tenant.find_user(actor)
            return {
                "app": None,
                "user": {
                    "id": user["id"] if user else stable_id("actor", tenant.id, actor.lower()),
                    "displayName": user.get("displayName") if user else None,
                    "userPrincipalName": actor,
                    "ipAddress": "203.0.113.24",
                    "userType": None,
                    "homeTenantId": None,
                    "homeTenantName": None,
                },
            }
        if not isinstance(actor, dict):
            raise ScenarioError("actor is a UPN string or an object")
        if "user" in actor or "app" in actor:
            return {"app": actor.get("app"), "user": actor.get("user")}
        if "appId" in actor or "servicePrincipalId" in actor:
            app_id = str(actor.get("appId", ""))
            app = self.applications.get(app_id.lower())
            return {
                "user": None,
                "app": {
                    "appId": app_id or None,
                    "displayName": actor.get("displayName", app.display_name if app else None),
                    "servicePrincipalId": actor.get(
                        "servicePrincipalId", stable_id("sp", tenant.id, app_id.lower())
                    ),
                    "servicePrincipalName": actor.get("servicePrincipalName"),
                },
            }
        upn = str(actor.get("userPrincipalName", tenant.admin_upn))
        base = self.initiated_by(tenant, upn)
        base["user"].update({k: v for k, v in actor.items() if k != "userPrincipalName"})
        return base


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------


def record_ingestion(
    tenant: Tenant, record: dict[str, Any], time_field: str, now: datetime, historical: bool
) -> None:
    """When Log Analytics receives a row: on arrival (plus the tenant's ingestion delay).

    A row that arrives late (an event back-dated by the control API, a delay flag) keeps its
    own event time and gets the later ingestion time, as Log Analytics' TimeGenerated does.
    Scenario rows are history: they were ingested when they happened.
    """
    if historical:
        moment = resolve_time(record.get(time_field), now)
    else:
        delay = float(tenant.flags.get("logIngestionDelaySeconds") or 0)
        moment = now + timedelta(seconds=delay)
    tenant.log_ingested[str(record.get("id"))] = moment


def normalise_partner_policy(raw: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw.get("tenantId"):
        raise ScenarioError("a partner policy needs 'tenantId'")
    tenant_id = str(raw["tenantId"]).lower()
    uuid.UUID(tenant_id)
    unknown = (
        set(raw)
        - set(PARTNER_PROPERTIES)
        - {
            "tenantId",
            "isServiceProvider",
            "isInMultiTenantOrganization",
            "@odata.type",
        }
    )
    if unknown:
        raise ScenarioError(f"unknown partner policy properties: {sorted(unknown)}")
    policy: dict[str, Any] = {
        "tenantId": tenant_id,
        "isServiceProvider": raw.get("isServiceProvider"),
        "isInMultiTenantOrganization": raw.get("isInMultiTenantOrganization", False),
    }
    for prop in PARTNER_PROPERTIES:
        policy[prop] = copy.deepcopy(raw.get(prop))
    if policy["automaticUserConsentSettings"] is None:
        policy["automaticUserConsentSettings"] = {"inboundAllowed": None, "outboundAllowed": None}
    return policy


def normalise_default_policy(raw: dict[str, Any] | None) -> dict[str, Any]:
    policy = copy.deepcopy(SERVICE_DEFAULT_POLICY)
    if raw:
        allowed = set(SERVICE_DEFAULT_POLICY) | {"tenantRestrictions", "@odata.type"}
        unknown = set(raw) - allowed
        if unknown:
            raise ScenarioError(f"unknown default policy properties: {sorted(unknown)}")
        for key, value in raw.items():
            policy[key] = copy.deepcopy(value)
        policy["isServiceDefault"] = bool(raw.get("isServiceDefault", False))
    return policy


def _tenant_id_property(old: str | None, new: str | None) -> dict[str, Any]:
    return {
        "displayName": "tenantId",
        "oldValue": json.dumps(old) if old else None,
        "newValue": json.dumps(new) if new else None,
    }


_ACCESS_TYPE_NUMBERS = {"allowed": 1, "blocked": 2}


def encode_setting_value(value: Any, style: str) -> str | None:
    """JSON-encode a policy property the way Entra's audit log does.

    Access types become numbers (1 = allowed, 2 = blocked); keys are camelCase or
    PascalCase depending on ``style`` — Entra is not consistent, decoders must take both.
    """
    if value is None:
        return None
    if style not in {"camel", "pascal"}:
        raise ScenarioError("value_style must be 'camel' or 'pascal'")

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, inner in node.items():
                new_key = key[:1].upper() + key[1:] if style == "pascal" else key
                if key == "accessType" and isinstance(inner, str):
                    inner = _ACCESS_TYPE_NUMBERS.get(inner, inner)
                out[new_key] = convert(inner)
            return out
        if isinstance(node, list):
            return [convert(item) for item in node]
        return node

    return json.dumps(convert(value), separators=(",", ":"))


def _diff_properties(
    before: dict[str, Any] | None, after: dict[str, Any] | None, style: str
) -> list[dict[str, Any]]:
    changes = []
    for prop in AUDITED_PROPERTIES:
        old = before.get(prop) if before else None
        new = after.get(prop) if after else None
        if old == new:
            continue
        changes.append(
            {
                "displayName": prop,
                "oldValue": encode_setting_value(old, style),
                "newValue": encode_setting_value(new, style),
            }
        )
    return changes


USER_DEFAULT_SELECT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)


def guest_upn(mail: str, tenant: Tenant) -> str:
    return mail.replace("@", "_") + "#EXT#@" + tenant.default_domain


def normalise_user(raw: dict[str, Any], tenant: Tenant, now: datetime) -> dict[str, Any]:
    resolve_relative_fields(raw, now, style="seconds")
    user_type = str(raw.get("userType", "Member"))
    if user_type not in {"Member", "Guest"}:
        raise ScenarioError(f"userType must be 'Member' or 'Guest', not {user_type!r}")
    mail = raw.get("mail")
    upn = raw.get("userPrincipalName")
    if not upn:
        if user_type == "Guest" and mail:
            upn = guest_upn(str(mail), tenant)
        elif mail:
            upn = str(mail)
        else:
            raise ScenarioError("a user needs userPrincipalName or mail")
    user_id = str(raw.get("id") or stable_id("user", tenant.id, str(upn).lower())).lower()
    display = raw.get("displayName") or str(mail or upn).split("@")[0]
    guest = user_type == "Guest"
    user: dict[str, Any] = {
        "id": user_id,
        "businessPhones": [],
        "displayName": display,
        "givenName": None,
        "jobTitle": None,
        "mail": mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": None,
        "userPrincipalName": upn,
        "userType": user_type,
        "accountEnabled": True,
        "createdDateTime": iso_seconds(now),
        "creationType": "Invitation" if guest else None,
        "externalUserState": "PendingAcceptance" if guest else None,
        "externalUserStateChangeDateTime": iso_seconds(now) if guest else None,
        "otherMails": [],
        "identities": [
            {
                "signInType": "userPrincipalName",
                "issuer": tenant.default_domain,
                "issuerAssignedId": upn,
            }
        ],
    }
    for key, value in raw.items():
        user[key] = value
    user["id"] = user_id
    user["userPrincipalName"] = upn
    return user


def normalise_sign_in(
    raw: dict[str, Any], tenant: Tenant, now: datetime, state: SimState
) -> dict[str, Any]:
    resolve_relative_fields(raw, now, style="iso7")
    if "createdDateTime" in raw:
        raw["createdDateTime"] = iso7(resolve_time(raw["createdDateTime"], now))
    status = dict(raw.pop("status", None) or {})
    if "errorCode" in raw:
        status["errorCode"] = raw.pop("errorCode")
    code = int(status.get("errorCode", 0))
    status["errorCode"] = code
    status.setdefault("failureReason", SIGNIN_FAILURE_REASONS.get(code, "Other.") if code else None)
    status.setdefault("additionalDetails", None)
    home = str(raw.get("homeTenantId") or tenant.id).lower()
    upn = raw.get("userPrincipalName") or f"user@{tenant.default_domain}"
    app_id = raw.get("appId")
    app = state.applications.get(str(app_id).lower()) if app_id else None
    home_tenant = state.tenants.get(home)
    record: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "createdDateTime": iso7(now),
        "userDisplayName": str(upn).split("@")[0],
        "userPrincipalName": upn,
        "userId": stable_id("signin-user", home, str(upn).lower()),
        "appId": app_id,
        "appDisplayName": app.display_name if app else raw.get("appDisplayName"),
        "ipAddress": "198.51.100.17",
        "clientAppUsed": "Browser",
        "correlationId": str(uuid.uuid4()),
        "conditionalAccessStatus": "notApplied",
        "isInteractive": True,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes": [],
        "resourceDisplayName": raw.get("appDisplayName") or (app.display_name if app else None),
        "resourceId": app_id,
        "resourceTenantId": tenant.id,
        "homeTenantId": home,
        "homeTenantName": home_tenant.display_name if home_tenant else None,
        "crossTenantAccessType": "b2bCollaboration" if home != tenant.id else "none",
        "userType": "guest" if home != tenant.id else "member",
        "status": status,
        "deviceDetail": {
            "deviceId": "",
            "displayName": None,
            "operatingSystem": "Windows 10",
            "browser": "Edge 120.0.0",
            "isCompliant": None,
            "isManaged": None,
            "trustType": None,
        },
        "location": {
            "city": "London",
            "state": "London",
            "countryOrRegion": "GB",
            "geoCoordinates": {"altitude": None, "latitude": 51.5072, "longitude": -0.1276},
        },
        "appliedConditionalAccessPolicies": [],
    }
    for key, value in raw.items():
        record[key] = value
    record["status"] = status
    record["homeTenantId"] = home
    record["resourceTenantId"] = str(record.get("resourceTenantId") or tenant.id).lower()
    return record


def normalise_audit(raw: dict[str, Any], now: datetime) -> dict[str, Any]:
    resolve_relative_fields(raw, now, style="iso7")
    if "activityDateTime" in raw:
        raw["activityDateTime"] = iso7(resolve_time(raw["activityDateTime"], now))
    correlation_id = str(raw.get("correlationId") or uuid.uuid4())
    event: dict[str, Any] = {
        "id": audit_event_id(correlation_id, uuid.uuid4().int % 10**9),
        "category": "Core Directory",
        "correlationId": correlation_id,
        "result": "success",
        "resultReason": "",
        "activityDisplayName": "Update user",
        "activityDateTime": iso7(now),
        "loggedByService": "Core Directory",
        "operationType": "Update",
        "initiatedBy": {"app": None, "user": None},
        "userAgent": None,
        "targetResources": [],
        "additionalDetails": [],
    }
    event.update(raw)
    return event


def normalise_access_review(
    raw: dict[str, Any], tenant: Tenant, created_by: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    resolve_relative_fields(raw, now, style="seconds")
    settings = dict(raw.get("settings") or {})
    recurrence = settings.get("recurrence") or {}
    pattern = {
        "type": "weekly",
        "interval": 1,
        "month": 0,
        "dayOfMonth": 0,
        "daysOfWeek": [],
        "firstDayOfWeek": "sunday",
        "index": "first",
        **(recurrence.get("pattern") or {}),
    }
    start = str((recurrence.get("range") or {}).get("startDate") or iso_seconds(now))[:10]
    rng = {
        "type": "noEnd",
        "numberOfOccurrences": 0,
        "recurrenceTimeZone": None,
        "startDate": start,
        "endDate": None,
        **{k: v for k, v in (recurrence.get("range") or {}).items() if k != "startDate"},
    }
    full_settings = {
        "mailNotificationsEnabled": True,
        "reminderNotificationsEnabled": True,
        "justificationRequiredOnApproval": True,
        "defaultDecisionEnabled": False,
        "defaultDecision": "None",
        "instanceDurationInDays": 1,
        "autoApplyDecisionsEnabled": False,
        "recommendationsEnabled": True,
        **settings,
        "recurrence": {"pattern": pattern, "range": rng},
        "applyActions": settings.get("applyActions", []),
    }
    reviewers = [{"queryRoot": None, **r} for r in raw.get("reviewers", [])]
    definition = {
        "id": str(raw.get("id") or uuid.uuid4()),
        "displayName": raw.get("displayName"),
        "createdDateTime": raw.get("createdDateTime") or iso_seconds(now),
        "lastModifiedDateTime": raw.get("lastModifiedDateTime") or iso_seconds(now),
        "status": raw.get("status", "NotStarted"),
        "descriptionForAdmins": raw.get("descriptionForAdmins"),
        "descriptionForReviewers": raw.get("descriptionForReviewers"),
        "instanceEnumerationScope": raw.get("instanceEnumerationScope"),
        "createdBy": created_by
        or raw.get("createdBy")
        or {
            "id": stable_id("admin", tenant.id),
            "displayName": "Administrator",
            "userPrincipalName": tenant.admin_upn,
        },
        "scope": raw.get("scope"),
        "reviewers": reviewers,
        "fallbackReviewers": raw.get("fallbackReviewers", []),
        "settings": full_settings,
        "additionalNotificationRecipients": raw.get("additionalNotificationRecipients", []),
    }
    return definition
